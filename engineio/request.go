package engineio

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
)

// keptRequest is what a session keeps of the request that opened it: the request line and
// the header fields as one string, in HTTP/1.1's form, rather than the parsed URL and header
// map, which cost several times its size: an idle session is mostly this and its connection.
// Session.Request rebuilds the request.
type keptRequest struct {
	head       string // "METHOD URI PROTO\nKey: value\n...", keys canonical as net/http made them
	host       string
	remoteAddr string
	tls        *tls.ConnectionState
}

func keepRequest(r *http.Request) keptRequest {
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	n := len(r.Method) + len(uri) + len(r.Proto) + 3
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(uri)
	b.WriteByte(' ')
	b.WriteString(r.Proto)
	b.WriteByte('\n')
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return keptRequest{head: b.String(), host: r.Host, remoteAddr: r.RemoteAddr, tls: r.TLS}
}

// request rebuilds the request, with an empty body.
func (k *keptRequest) request() *http.Request {
	line, fields, _ := strings.Cut(k.head, "\n")
	method, rest, _ := strings.Cut(line, " ")
	uri, proto, _ := strings.Cut(rest, " ")
	u, err := url.ParseRequestURI(uri)
	if err != nil { // net/http parsed it once already
		u = &url.URL{Path: "/"}
	}
	h := make(http.Header)
	for line := range strings.Lines(fields) {
		key, value, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		h[key] = append(h[key], value)
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		Header:     h,
		Body:       http.NoBody,
		Host:       k.host,
		RemoteAddr: k.remoteAddr,
		RequestURI: uri,
		TLS:        k.tls,
	}
	r.ProtoMajor, r.ProtoMinor, _ = http.ParseHTTPVersion(proto)
	return r
}
