package engineio

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestAKeptRequestRebuildsTheRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/socket.io/?EIO=4&transport=websocket&room=a%20b&room=c", nil)
	r.RemoteAddr = "192.0.2.1:4321"
	r.Host = "chat.example:8080"
	r.TLS = &tls.ConnectionState{ServerName: "chat.example"}
	r.Header = http.Header{
		"Cookie":        {"io=abc; theme=dark"},
		"X-Forwarded":   {"for=192.0.2.9", "for=198.51.100.2"},
		"Authorization": {"Bearer a:b: c"}, // ": " inside a value
		"X-Empty":       {""},
	}
	k := keepRequest(r)
	got := k.request()
	if !reflect.DeepEqual(got.Header, r.Header) {
		t.Errorf("header %v, want %v", got.Header, r.Header)
	}
	if got.URL.Path != "/socket.io/" || !reflect.DeepEqual(got.URL.Query(), r.URL.Query()) {
		t.Errorf("URL %v, want %v", got.URL, r.URL)
	}
	if got.Method != r.Method || got.Host != r.Host || got.RemoteAddr != r.RemoteAddr || got.TLS != r.TLS ||
		got.RequestURI != r.RequestURI || got.ProtoMajor != 1 || got.ProtoMinor != 1 {
		t.Errorf("got %s %s %s %s %v %q HTTP/%d.%d", got.Method, got.Host, got.RemoteAddr, got.RequestURI, got.TLS, got.Proto, got.ProtoMajor, got.ProtoMinor)
	}
	if c, err := got.Cookie("io"); err != nil || c.Value != "abc" {
		t.Errorf("cookie io: %v %v", c, err)
	}
	got.Header.Set("Cookie", "changed") // each call returns a copy of its own
	if k.request().Header.Get("Cookie") != "io=abc; theme=dark" {
		t.Error("a change to one rebuilt request shows in the next")
	}
}
