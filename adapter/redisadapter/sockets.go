package redisadapter

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/duplexio/duplex/socketio"
)

// The sockets of a fetchSockets answer: {id, handshake, rooms, data}, with the handshake as
// socket.io builds it: {headers (lower-case names), time (Date's toString), address,
// xdomain, secure, issued (ms since the epoch), url, query, auth}.

// nodeTimeLayout is how JavaScript's Date.prototype.toString writes a time, less the
// time zone's name in parentheses.
const nodeTimeLayout = "Mon Jan 02 2006 15:04:05 GMT-0700"

// wireSockets describes local sockets as a fetchSockets answer.
func wireSockets(infos []socketio.SocketInfo) []any {
	out := make([]any, 0, len(infos))
	for _, s := range infos {
		h := s.Handshake
		headers := map[string]any{}
		for k, v := range h.Headers {
			headers[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		query := map[string]any{}
		for k, v := range h.Query {
			if len(v) == 1 {
				query[k] = v[0]
			} else {
				query[k] = stringsAny(v)
			}
		}
		var auth any = map[string]any{}
		if len(h.Auth) > 0 {
			_ = json.Unmarshal(h.Auth, &auth)
		}
		rooms := roomList(s.Rooms)
		data, err := jsonValues([]any{s.Data})
		var d any
		if err == nil {
			d = data[0]
		}
		out = append(out, map[string]any{
			"id": s.ID,
			"handshake": map[string]any{
				"headers": headers,
				"time":    h.Time.Format(nodeTimeLayout) + " (" + h.Time.Format("MST") + ")",
				"address": h.Address,
				"xdomain": h.Headers.Get("Origin") != "",
				"secure":  h.Secure,
				"issued":  h.Time.UnixMilli(),
				"url":     h.URL,
				"query":   query,
				"auth":    auth,
			},
			"rooms": rooms,
			"data":  d,
		})
	}
	return out
}

// socketInfo reads a socket of a fetchSockets answer.
func socketInfo(v any) socketio.SocketInfo {
	m, _ := v.(map[string]any)
	info := socketio.SocketInfo{ID: str(m, "id"), Rooms: roomsOf(m["rooms"]), Data: m["data"]}
	h, _ := m["handshake"].(map[string]any)
	if h == nil {
		return info
	}
	hs := socketio.Handshake{
		Headers: http.Header{},
		Query:   url.Values{},
		Address: str(h, "address"),
		URL:     str(h, "url"),
	}
	hs.Secure, _ = h["secure"].(bool)
	if ms, ok := intOf(h, "issued"); ok {
		hs.Time = time.UnixMilli(int64(ms))
	} else if t, err := time.Parse(nodeTimeLayout, strings.SplitN(str(h, "time"), " (", 2)[0]); err == nil {
		hs.Time = t
	}
	if hd, ok := h["headers"].(map[string]any); ok {
		for k, v := range hd {
			for _, s := range valueStrings(v) {
				hs.Headers.Add(k, s)
			}
		}
	}
	if q, ok := h["query"].(map[string]any); ok {
		for k, v := range q {
			for _, s := range valueStrings(v) {
				hs.Query.Add(k, s)
			}
		}
	}
	if auth, ok := h["auth"]; ok && auth != nil {
		if b, err := json.Marshal(auth); err == nil {
			hs.Auth = b
		}
	}
	info.Handshake = hs
	return info
}

func valueStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, valueStrings(e)...)
		}
		return out
	case nil:
		return nil
	}
	return []string{fmt.Sprint(v)}
}
