package socketio

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestNewArgs(t *testing.T) {
	a, err := NewArgs("s", 1.5, []byte{1, 2}, map[string]any{"b": []byte{3}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 5 {
		t.Fatalf("Len %d", a.Len())
	}
	if b, ok := a.Binary(2); !ok || !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("Binary(2) %v %v", b, ok)
	}
	vals, err := a.Values()
	if err != nil {
		t.Fatal(err)
	}
	if m := vals[3].(map[string]any); !bytes.Equal(m["b"].([]byte), []byte{3}) {
		t.Fatalf("nested binary %v", vals[3])
	}
	if string(a.Raw(0)) != `"s"` || vals[1] != 1.5 || vals[4] != nil {
		t.Fatalf("values %v", vals)
	}
	if _, err := NewArgs(make(chan int)); err == nil {
		t.Fatal("a channel encoded")
	}
}

func TestServerSideHandlersRunInOrder(t *testing.T) {
	srv := NewServer(nil)
	nsp := srv.Of("/")
	got := make(chan int, 10)
	nsp.OnServerSideEmit("n", func(args Args, ack AckFunc) {
		var x int
		_ = args.Decode(0, &x)
		got <- x
		if ack != nil {
			_ = ack(x * 2)
		}
	})
	answered := make(chan []any, 1)
	for i := range 5 {
		a, _ := NewArgs(i)
		var ack AckFunc
		if i == 4 {
			ack = func(vals ...any) error { answered <- vals; return nil }
		}
		nsp.ReceiveServerSideEmit("n", a, ack)
	}
	nsp.ReceiveServerSideEmit("nobody-listens", Args{}, nil)
	for i := range 5 {
		select {
		case x := <-got:
			if x != i {
				t.Fatalf("got %d, want %d", x, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("handler not called")
		}
	}
	if vals := <-answered; len(vals) != 1 || vals[0] != 8 {
		t.Fatalf("ack %v", vals)
	}
}

func TestServerSideEmitWithAckWithoutCluster(t *testing.T) {
	nsp := NewServer(nil).Of("/")
	res, err := nsp.ServerSideEmitWithAck(context.Background(), "x", 1)
	if err != nil || len(res) != 0 {
		t.Fatalf("%v %v", res, err)
	}
	if _, err := nsp.ServerSideEmitWithAck(context.Background(), "connect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("reserved: %v", err)
	}
}

func TestEncodeBroadcast(t *testing.T) {
	srv := NewServer(&Options{ConnectionStateRecovery: &RecoveryOptions{}})
	nsp := srv.Of("/chat")
	p, err := nsp.EncodeBroadcast("ev", []any{1, []byte{9}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Offset == "" || !bytes.HasPrefix(p.Text, []byte(`51-/chat,["ev",1,{"_placeholder":true,"num":0},"`)) || len(p.Attachments) != 1 {
		t.Fatalf("kept broadcast %q offset %q", p.Text, p.Offset)
	}
	if p, _ := nsp.EncodeBroadcast("ev", nil, true); p.Offset != "" || string(p.Text) != `2/chat,["ev"]` {
		t.Fatalf("volatile broadcast %q offset %q", p.Text, p.Offset)
	}
	p1, id1, _ := nsp.EncodeBroadcastWithAck("ev", nil)
	_, id2, _ := nsp.EncodeBroadcastWithAck("ev", nil)
	if id1 == id2 || p1.Offset != "" || !bytes.HasPrefix(p1.Text, []byte(`2/chat,`)) {
		t.Fatalf("with ack %q ids %d %d", p1.Text, id1, id2)
	}
}
