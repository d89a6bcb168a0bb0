package interop

import (
	"bytes"
	"encoding/json"
	"log/slog"

	"github.com/duplexio/duplex/engineio"
)

// ---- the Engine.IO twin of goclient-eio-server.js ----

// goEIOApp is goclient-eio-server.js on engineio.Server: every message echoed as it came,
// "__request" answered with what the request that opened the session carried.
func goEIOApp(cfg gcConfig, events chan<- gcEvent, logger *slog.Logger) gcApp {
	srv := &engineio.Server{
		PingInterval:      msDuration(cfg.PingInterval),
		PingTimeout:       msDuration(cfg.PingTimeout),
		MaxHTTPBufferSize: int64(cfg.MaxHTTPBufferSize),
		Logger:            logger,
	}
	srv.OnConnection = func(s *engineio.Session) {
		id := s.ID()
		gcSend(events, gcEvent{Op: "open", ID: id, Transport: s.Transport()})
		r := s.Request()
		s.OnMessage = func(data []byte, binary bool) {
			if !binary && string(data) == "__request" {
				reply, _ := json.Marshal(map[string]string{
					"header":    r.Header.Get("X-Duplex-Test"),
					"query":     r.URL.Query().Get("duplex"),
					"transport": s.Transport(),
				})
				_ = s.Send(reply, engineio.Text)
				return
			}
			flags := engineio.Text
			if binary {
				flags = engineio.Binary
			}
			_ = s.Send(bytes.Clone(data), flags) // data is the server's only during the call
		}
		s.OnClose = func(reason engineio.CloseReason, _ error) {
			gcSend(events, gcEvent{Op: "close", ID: id, Reason: string(reason)})
		}
	}
	return gcApp{handler: srv, shutdown: srv.Shutdown}
}
