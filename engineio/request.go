package engineio

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

// keptRequest is what a session keeps of the request that opened it. The header fields are
// kept as one string rather than as the parsed map, which costs several times its size: an
// idle session is mostly this and its connection. Session.Request rebuilds the request.
type keptRequest struct {
	method     string
	proto      string
	host       string
	requestURI string
	remoteAddr string
	header     string // "Key: value\n" per value, keys canonical as net/http made them
	tls        *tls.ConnectionState
}

func keepRequest(r *http.Request) keptRequest {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	return keptRequest{
		method:     r.Method,
		proto:      r.Proto,
		host:       r.Host,
		requestURI: uri,
		remoteAddr: r.RemoteAddr,
		header:     b.String(),
		tls:        r.TLS,
	}
}

// request rebuilds the request, with an empty body.
func (k *keptRequest) request() *http.Request {
	u, err := url.ParseRequestURI(k.requestURI)
	if err != nil { // net/http parsed it once already
		u = &url.URL{Path: "/"}
	}
	h := make(http.Header)
	for line := range strings.Lines(k.header) {
		key, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		h[key] = append(h[key], value)
	}
	r := &http.Request{
		Method:     k.method,
		URL:        u,
		Proto:      k.proto,
		Header:     h,
		Body:       http.NoBody,
		Host:       k.host,
		RemoteAddr: k.remoteAddr,
		RequestURI: k.requestURI,
		TLS:        k.tls,
	}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(k.proto)
	return r
}
