package ws

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echoServer starts an httptest server whose handler echoes every message.
func echoServer(t testing.TB, u *Upgrader) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		var buf []byte
		for {
			typ, msg, err := c.AppendMessage(context.Background(), buf[:0])
			if err != nil {
				return
			}
			buf = msg
			if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func wsURL(srv *httptest.Server) string { return "ws" + strings.TrimPrefix(srv.URL, "http") }

func TestEchoRoundTripOverNetHTTP(t *testing.T) {
	srv := echoServer(t, &Upgrader{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, size := range []int{0, 1, 125, 126, 65535, 65536, 1 << 20} {
		for _, typ := range []MessageType{MessageText, MessageBinary} {
			want := bytes.Repeat([]byte("a"), size)
			if err := c.WriteMessage(ctx, typ, want); err != nil {
				t.Fatal(err)
			}
			gotTyp, got, err := c.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if gotTyp != typ || !bytes.Equal(got, want) {
				t.Fatalf("size %d %v: got %v len %d", size, typ, gotTyp, len(got))
			}
		}
	}
	if err := c.Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
}

func TestEchoOverRawListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u := &Upgrader{}
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		c, _, err := u.UpgradeConn(nc)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.ReadMessage(context.Background())
			if err != nil {
				return
			}
			if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws://"+ln.Addr().String()+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.NextWriter(ctx, MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"hel", "lo ", "wörld"} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	typ, got, err := c.ReadMessage(ctx)
	if err != nil || typ != MessageText || string(got) != "hello wörld" {
		t.Fatalf("got %v %q %v", typ, got, err)
	}
	if err := c.Close(StatusGoingAway, ""); err != nil {
		t.Fatal(err)
	}
}
