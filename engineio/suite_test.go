package engineio_test

// The official Engine.IO v4 protocol test suite (socketio/engine.io-protocol,
// test-suite/test-suite.js) as Go tests: TestEngineIOProtocol has one subtest per check of the
// suite, with the same names and grouping, against the suite's fixture: fixture.Engine, which
// "duplex serve --fixture" also serves (see newSuiteFixture). TestEngineIOProtocolDetails adds
// what the suite leaves implicit: error codes, session ids, close reasons, payload limits, the
// upgrade's corner cases and CORS.
//
// Differences from the JavaScript, all to make the checks deterministic on slow machines:
//   - the suite sleeps for fixed delays (ping interval + ping timeout, a few ms between two
//     requests); these tests wait, bounded by eiotest.WaitLimit, for the event itself: the
//     server's OnClose, a request reaching the handler, the session's transport changing;
//   - the 300 ms ping interval can slip a heartbeat ping into any poll or WebSocket read on a
//     slow machine; checks that are not about the heartbeat drop such pings and answer them,
//     and the checks built on a request racing a pending poll start over (at most three times)
//     with a fresh session when a ping took the poll's place.

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/fixture"
	"github.com/duplexio/duplex/ws"
)

func TestEngineIOProtocol(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		fx := newSuiteFixture(t, mode)

		t.Run("handshake", func(t *testing.T) {
			t.Run("HTTP long-polling", func(t *testing.T) {
				t.Run("successfully opens a session", func(t *testing.T) {
					r := fx.MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil)
					if r.Status != http.StatusOK {
						t.Fatalf("got %v, want 200", r)
					}
					eiotest.CheckOpen(t, r.Body, []string{"websocket"}, fixture.PingInterval, fixture.PingTimeout, fixture.MaxPayload)
				})

				t.Run("fails with an invalid 'EIO' query parameter", func(t *testing.T) {
					fx.ExpectBadRequest(t, http.MethodGet, "transport=polling", "EIO=abc&transport=polling")
				})

				t.Run("fails with an invalid 'transport' query parameter", func(t *testing.T) {
					fx.ExpectBadRequest(t, http.MethodGet, "EIO=4", "EIO=4&transport=abc")
				})

				t.Run("fails with an invalid request method", func(t *testing.T) {
					fx.ExpectBadRequest(t, http.MethodPost, "EIO=4&transport=polling")
					fx.ExpectBadRequest(t, http.MethodPut, "EIO=4&transport=polling")
				})
			})

			t.Run("WebSocket", func(t *testing.T) {
				t.Run("successfully opens a session", func(t *testing.T) {
					c := fx.MustDial(t, "EIO=4&transport=websocket")
					typ, data := eiotest.MustRead(t, c)
					if typ != ws.MessageText {
						t.Fatalf("open packet in a %v frame", typ)
					}
					eiotest.CheckOpen(t, data, []string{}, fixture.PingInterval, fixture.PingTimeout, fixture.MaxPayload)
					c.Close(ws.StatusNormalClosure, "")
				})

				t.Run("fails with an invalid 'EIO' query parameter", func(t *testing.T) {
					fx.ExpectRefusedWebSocket(t, "transport=websocket")
					fx.ExpectRefusedWebSocket(t, "EIO=abc&transport=websocket")
				})

				t.Run("fails with an invalid 'transport' query parameter", func(t *testing.T) {
					fx.ExpectRefusedWebSocket(t, "EIO=4")
					fx.ExpectRefusedWebSocket(t, "EIO=4&transport=abc")
				})
			})
		})

		t.Run("message", func(t *testing.T) {
			t.Run("HTTP long-polling", func(t *testing.T) {
				echo := func(t *testing.T, body string) {
					t.Helper()
					sid := fx.OpenPolling(t)
					if r := fx.Push(t, sid, body); r.Status != http.StatusOK || r.Body != "ok" {
						t.Fatalf("POST %q: %v, want 200 \"ok\"", body, r)
					}
					if r := fx.PollSkippingPings(t, sid); r.Status != http.StatusOK || r.Body != body {
						t.Fatalf("GET: %v, want 200 %q", r, body)
					}
				}

				t.Run("sends and receives a payload containing one plain text packet", func(t *testing.T) {
					echo(t, "4hello")
				})

				t.Run("sends and receives a payload containing several plain text packets", func(t *testing.T) {
					echo(t, "4test1\x1e4test2\x1e4test3")
				})

				t.Run("sends and receives a payload containing plain text and binary packets", func(t *testing.T) {
					echo(t, "4hello\x1ebAQIDBA==")
				})

				t.Run("closes the session upon invalid packet format", func(t *testing.T) {
					sid := fx.OpenPolling(t)
					// The suite does not hold the server to an answer here (Node answers 200 "ok" and
					// closes the session); only the next poll is checked.
					r, err := fx.Do(http.MethodPost, eiotest.PollQuery(sid), strings.NewReader("abc"), nil)
					t.Logf("POST \"abc\": %v, %v", r, err)
					if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
						t.Fatalf("GET after the bad packet: %v, want 400", r)
					}
				})

				t.Run("closes the session upon duplicate poll requests", func(t *testing.T) {
					eiotest.RetryOnPing(t, func(t *testing.T) (pinged bool) {
						sid := fx.OpenPolling(t)
						var second eiotest.Reply
						var err error
						first, firstErr := fx.PollDuring(t, &fx.arrivals, sid, func() {
							second, err = fx.Do(http.MethodGet, eiotest.PollQuery(sid)+"&t=burst", nil, nil)
						})
						if firstErr != nil || err != nil {
							t.Fatalf("polls: %v, %v", firstErr, err)
						}
						if _, n := eiotest.DropPings(first.Body); n > 0 && first.Status == http.StatusOK {
							return true
						}
						if first.Status != http.StatusOK || first.Body != "1" {
							t.Errorf("first poll: %v, want 200 \"1\" (close)", first)
						}
						if second.Status != http.StatusBadRequest && second.Status != http.StatusInternalServerError {
							t.Errorf("second poll: %v, want 400 (or 500, as Node)", second)
						}
						if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
							t.Errorf("poll after: %v, want 400", r)
						}
						return false
					})
				})
			})

			t.Run("WebSocket", func(t *testing.T) {
				t.Run("sends and receives a plain text packet", func(t *testing.T) {
					c, _ := fx.OpenWebSocket(t)
					eiotest.Send(t, c, "4hello")
					if typ, s := eiotest.ReadSkipping(t, c); typ != ws.MessageText || s != "4hello" {
						t.Fatalf("got %v %q, want text \"4hello\"", typ, s)
					}
					c.Close(ws.StatusNormalClosure, "")
				})

				t.Run("sends and receives a binary packet", func(t *testing.T) {
					c, _ := fx.OpenWebSocket(t)
					eiotest.SendMessage(t, c, ws.MessageBinary, []byte{1, 2, 3, 4})
					if typ, s := eiotest.ReadSkipping(t, c); typ != ws.MessageBinary || s != "\x01\x02\x03\x04" {
						t.Fatalf("got %v %q, want binary 01 02 03 04", typ, s)
					}
					c.Close(ws.StatusNormalClosure, "")
				})

				t.Run("closes the session upon invalid packet format", func(t *testing.T) {
					c, _ := fx.OpenWebSocket(t)
					eiotest.Send(t, c, "abc")
					eiotest.AwaitWSClose(t, c, false)
				})
			})
		})

		t.Run("heartbeat", func(t *testing.T) {
			t.Run("HTTP long-polling", func(t *testing.T) {
				t.Run("sends ping/pong packets", func(t *testing.T) {
					sid := fx.OpenPolling(t)
					for i := 0; i < 3; i++ {
						if r := fx.Poll(t, sid); r.Status != http.StatusOK || r.Body != "2" {
							t.Fatalf("poll %d: %v, want 200 \"2\" (ping)", i+1, r)
						}
						if r := fx.Push(t, sid, "3"); r.Status != http.StatusOK {
							t.Fatalf("pong %d: %v, want 200", i+1, r)
						}
					}
				})

				t.Run("closes the session upon ping timeout", func(t *testing.T) {
					sid := fx.OpenPolling(t)
					fx.awaitClosed(t, sid)
					if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
						t.Fatalf("poll after the ping timeout: %v, want 400", r)
					}
				})
			})

			t.Run("WebSocket", func(t *testing.T) {
				t.Run("sends ping/pong packets", func(t *testing.T) {
					c, _ := fx.OpenWebSocket(t)
					for i := 0; i < 3; i++ {
						if typ, s := eiotest.MustRead(t, c); typ != ws.MessageText || s != "2" {
							t.Fatalf("message %d: %v %q, want text \"2\" (ping)", i+1, typ, s)
						}
						eiotest.Send(t, c, "3")
					}
					c.Close(ws.StatusNormalClosure, "")
				})

				t.Run("closes the session upon ping timeout", func(t *testing.T) {
					c := fx.MustDial(t, "EIO=4&transport=websocket")
					got := eiotest.AwaitWSClose(t, c, false)
					for i, s := range got {
						if (i == 0) != strings.HasPrefix(s, "0") || (i > 0 && s != "2") {
							t.Errorf("before the close: %q, want the open packet then pings", got)
							break
						}
					}
				})
			})
		})

		t.Run("close", func(t *testing.T) {
			t.Run("HTTP long-polling", func(t *testing.T) {
				t.Run("forcefully closes the session", func(t *testing.T) {
					eiotest.RetryOnPing(t, func(t *testing.T) (pinged bool) {
						sid := fx.OpenPolling(t)
						pending, pendingErr := fx.PollDuring(t, &fx.arrivals, sid, func() {
							closeRes, closeErr := fx.Do(http.MethodPost, eiotest.PollQuery(sid), strings.NewReader("1"), nil)
							t.Logf("POST \"1\": %v, %v", closeRes, closeErr)
						})
						if pendingErr != nil {
							t.Fatalf("pending poll: %v", pendingErr)
						}
						if _, n := eiotest.DropPings(pending.Body); n > 0 && pending.Status == http.StatusOK {
							return true
						}
						if pending.Status != http.StatusOK || pending.Body != "6" {
							t.Errorf("pending poll: %v, want 200 \"6\" (noop)", pending)
						}
						if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
							t.Errorf("poll after the close: %v, want 400", r)
						}
						return false
					})
				})
			})

			t.Run("WebSocket", func(t *testing.T) {
				t.Run("forcefully closes the session", func(t *testing.T) {
					c, _ := fx.OpenWebSocket(t)
					eiotest.Send(t, c, "1")
					eiotest.AwaitWSClose(t, c, false)
				})
			})
		})

		t.Run("upgrade", func(t *testing.T) {
			t.Run("successfully upgrades from HTTP long-polling to WebSocket", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := fx.Probe(t, sid)
				if r := fx.PollSkippingPings(t, sid); r.Status != http.StatusOK || r.Body != "6" {
					t.Fatalf("poll during the upgrade: %v, want 200 \"6\" (noop)", r)
				}
				eiotest.Send(t, c, "5")
				eiotest.Send(t, c, "4hello")
				if typ, s := eiotest.ReadSkipping(t, c, "6"); typ != ws.MessageText || s != "4hello" {
					t.Fatalf("after the upgrade: %v %q, want text \"4hello\"", typ, s)
				}
				c.Close(ws.StatusNormalClosure, "")
			})

			t.Run("ignores HTTP requests with same sid after upgrade", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := fx.SendUpgrade(t, sid)
				fx.awaitTransport(t, sid, engineio.TransportWebSocket)
				if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
					t.Fatalf("poll after the upgrade: %v, want 400", r)
				}
				eiotest.Send(t, c, "4hello")
				if typ, s := eiotest.ReadSkipping(t, c, "3probe", "6"); typ != ws.MessageText || s != "4hello" {
					t.Fatalf("after the refused poll: %v %q, want text \"4hello\"", typ, s)
				}
				c.Close(ws.StatusNormalClosure, "")
			})

			t.Run("ignores WebSocket connection with same sid after upgrade", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := fx.SendUpgrade(t, sid)
				fx.awaitTransport(t, sid, engineio.TransportWebSocket)
				fx.ExpectRefusedWebSocket(t, "EIO=4&transport=websocket&sid="+sid)
				eiotest.Send(t, c, "4hello")
				if typ, s := eiotest.ReadSkipping(t, c, "3probe", "6"); typ != ws.MessageText || s != "4hello" {
					t.Fatalf("after the refused WebSocket: %v %q, want text \"4hello\"", typ, s)
				}
				c.Close(ws.StatusNormalClosure, "")
			})
		})
	})
}

var sidPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{20,}$`)

func TestEngineIOProtocolDetails(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		fx := newSuiteFixture(t, mode)

		t.Run("handshake", func(t *testing.T) {
			t.Run("gives each session a URL-safe id of at least 120 random bits", func(t *testing.T) {
				var sids []string
				for i := 0; i < 16; i++ {
					sids = append(sids, fx.OpenPolling(t))
				}
				c, sid := fx.OpenWebSocket(t)
				c.CloseNow()
				sids = append(sids, sid)
				seen := map[string]bool{}
				for i, s := range sids {
					if !sidPattern.MatchString(s) {
						t.Errorf("sid %q is not at least 20 characters of URL-safe base64", s)
					}
					if seen[s] {
						t.Errorf("sid %q given twice", s)
					}
					seen[s] = true
					if i == 0 {
						continue
					}
					// Random ids share about one position in 64; a counter or a timestamp shares most.
					prev, same := sids[i-1], 0
					for j := 0; j < len(s) && j < len(prev); j++ {
						if s[j] == prev[j] {
							same++
						}
					}
					if same > len(s)/2 {
						t.Errorf("sids %q and %q share %d positions: guessable", prev, s, same)
					}
				}
			})

			t.Run("refuses a missing or unsupported EIO with code 5", func(t *testing.T) {
				for _, q := range []string{"transport=polling", "EIO=3&transport=polling", "EIO=5&transport=polling", "EIO=abc&transport=polling"} {
					eiotest.ExpectError(t, "GET ?"+q, fx.MustDo(t, http.MethodGet, q, nil), engineio.ErrorUnsupportedProtocolVersion)
				}
			})

			t.Run("refuses a missing or unknown transport with code 0", func(t *testing.T) {
				for _, q := range []string{"EIO=4", "EIO=4&transport=", "EIO=4&transport=abc", "EIO=4&transport=flashsocket"} {
					eiotest.ExpectError(t, "GET ?"+q, fx.MustDo(t, http.MethodGet, q, nil), engineio.ErrorTransportUnknown)
				}
			})

			t.Run("refuses a handshake that is not a GET with code 2", func(t *testing.T) {
				for _, m := range []string{http.MethodPost, http.MethodPut} {
					eiotest.ExpectError(t, m+" handshake", fx.MustDo(t, m, "EIO=4&transport=polling", strings.NewReader("4hello")), engineio.ErrorBadHandshakeMethod)
				}
			})

			t.Run("refuses an unknown sid with code 1", func(t *testing.T) {
				q := eiotest.PollQuery("AAAAAAAAAAAAAAAAAAAA")
				eiotest.ExpectError(t, "GET", fx.MustDo(t, http.MethodGet, q, nil), engineio.ErrorSessionIDUnknown)
				eiotest.ExpectError(t, "POST", fx.MustDo(t, http.MethodPost, q, strings.NewReader("4hello")), engineio.ErrorSessionIDUnknown)
				fx.ExpectRefusedWebSocket(t, "EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA")
			})
		})

		t.Run("polling", func(t *testing.T) {
			t.Run("answers a POST with ok as text/html", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				r := fx.Push(t, sid, "4héllo ✓")
				if r.Status != http.StatusOK || r.Body != "ok" || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
					t.Fatalf("POST: %v, Content-Type %q; want 200 \"ok\" as text/html", r, r.Header.Get("Content-Type"))
				}
				if r := fx.PollSkippingPings(t, sid); r.Body != "4héllo ✓" {
					t.Fatalf("echo: %v, want the UTF-8 text back as is", r)
				}
			})

			t.Run("accepts a POST of exactly maxPayload bytes", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				body := "4" + strings.Repeat("a", fixture.MaxPayload-1)
				if r := fx.Push(t, sid, body); r.Status != http.StatusOK || r.Body != "ok" {
					t.Fatalf("POST of %d bytes: %d %.40q, want 200 \"ok\"", len(body), r.Status, r.Body)
				}
				if r := fx.PollSkippingPings(t, sid); r.Status != http.StatusOK || r.Body != body {
					t.Fatalf("echo: %d, %d bytes, want 200 and the %d bytes sent", r.Status, len(r.Body), len(body))
				}
			})

			t.Run("refuses a POST over maxPayload and closes the session", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				body := "4" + strings.Repeat("a", fixture.MaxPayload)
				r, err := fx.Do(http.MethodPost, eiotest.PollQuery(sid), strings.NewReader(body), nil)
				switch {
				case err != nil:
					t.Logf("POST of %d bytes: the server cut the connection: %v", len(body), err)
				case r.Status != http.StatusRequestEntityTooLarge && r.Status != http.StatusBadRequest:
					t.Errorf("POST of %d bytes: %d %.40q, want 413 (or 400)", len(body), r.Status, r.Body)
				}
				fx.awaitClosed(t, sid)
				if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
					t.Errorf("poll after: %v, want 400", r)
				}
			})

			t.Run("closes the session upon duplicate POST requests", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				// The first POST announces 10 bytes and sends 4: it stays in the handler, reading.
				const body = "4parallel1"
				pr, pw := io.Pipe()
				req, err := http.NewRequest(http.MethodPost, fx.URL+"?"+eiotest.PollQuery(sid), pr)
				if err != nil {
					t.Fatal(err)
				}
				req.ContentLength = int64(len(body))
				arrived := fx.arrivals.Arrived(http.MethodPost, sid)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := fx.HTTP.Do(req)
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				}()
				go func() { pw.Write([]byte(body[:4])) }()
				eiotest.AwaitArrival(t, arrived, "the first POST")
				second := fx.Push(t, sid, "4x")
				pw.Write([]byte(body[4:])) // fails once the server dropped the first request
				pw.Close()
				wg.Wait()
				if second.Status != http.StatusBadRequest && second.Status != http.StatusInternalServerError {
					t.Errorf("second POST: %v, want 400 (or 500, as Node)", second)
				}
				fx.awaitClosed(t, sid)
				if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
					t.Errorf("poll after: %v, want 400", r)
				}
			})
		})

		t.Run("heartbeat", func(t *testing.T) {
			atLeast := fixture.PingInterval + fixture.PingTimeout

			t.Run("closes a polling session that does not answer with reason ping timeout", func(t *testing.T) {
				start := time.Now()
				sid := fx.OpenPolling(t)
				rec := fx.awaitCloseReason(t, sid, engineio.ReasonPingTimeout)
				if d := rec.at.Sub(start); d < atLeast {
					t.Errorf("closed after %v, before ping interval + ping timeout (%v)", d, atLeast)
				}
			})

			t.Run("closes a WebSocket session that does not answer with reason ping timeout", func(t *testing.T) {
				start := time.Now()
				c, sid := fx.OpenWebSocket(t)
				eiotest.AwaitWSClose(t, c, false)
				rec := fx.awaitCloseReason(t, sid, engineio.ReasonPingTimeout)
				if d := rec.at.Sub(start); d < atLeast {
					t.Errorf("closed after %v, before ping interval + ping timeout (%v)", d, atLeast)
				}
			})

			t.Run("keeps a polling session that answers every ping open", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				for i := 0; i < 5; i++ {
					if r := fx.Poll(t, sid); r.Status != http.StatusOK || r.Body != "2" {
						t.Fatalf("poll %d: %v, want 200 \"2\"", i+1, r)
					}
					if r := fx.Push(t, sid, "3"); r.Status != http.StatusOK {
						t.Fatalf("pong %d: %v", i+1, r)
					}
				}
				if fx.session(t, sid).isClosed() {
					t.Fatal("the session closed although every ping was answered")
				}
				fx.Push(t, sid, "4alive")
				if r := fx.PollSkippingPings(t, sid); r.Body != "4alive" {
					t.Fatalf("echo after five heartbeats: %v", r)
				}
			})

			t.Run("keeps a WebSocket session that answers every ping open", func(t *testing.T) {
				c, sid := fx.OpenWebSocket(t)
				for i := 0; i < 5; i++ {
					if typ, s := eiotest.MustRead(t, c); typ != ws.MessageText || s != "2" {
						t.Fatalf("message %d: %v %q, want \"2\"", i+1, typ, s)
					}
					eiotest.Send(t, c, "3")
				}
				if fx.session(t, sid).isClosed() {
					t.Fatal("the session closed although every ping was answered")
				}
				eiotest.Send(t, c, "4alive")
				if _, s := eiotest.ReadSkipping(t, c); s != "4alive" {
					t.Fatalf("echo after five heartbeats: %q", s)
				}
				c.Close(ws.StatusNormalClosure, "")
			})
		})

		t.Run("upgrade", func(t *testing.T) {
			// upgrade takes a polling session to WebSocket and returns the connection.
			upgrade := func(t *testing.T, sid string) *ws.Conn {
				t.Helper()
				c := fx.Probe(t, sid)
				eiotest.Send(t, c, "5")
				fx.awaitTransport(t, sid, engineio.TransportWebSocket)
				return c
			}

			t.Run("answers a pending poll with noop when the probe arrives", func(t *testing.T) {
				eiotest.RetryOnPing(t, func(t *testing.T) (pinged bool) {
					sid := fx.OpenPolling(t)
					var c *ws.Conn
					pending, pendingErr := fx.PollDuring(t, &fx.arrivals, sid, func() { c = fx.Probe(t, sid) })
					defer c.CloseNow()
					if pendingErr != nil {
						t.Fatalf("pending poll: %v", pendingErr)
					}
					if rest, n := eiotest.DropPings(pending.Body); n > 0 && rest == "" {
						return true
					}
					if pending.Status != http.StatusOK || pending.Body != "6" {
						t.Errorf("pending poll: %v, want 200 \"6\" (noop)", pending)
					}
					return false
				})
			})

			t.Run("sends packets queued during the upgrade through the WebSocket, in order", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := fx.Probe(t, sid)
				// No poll is pending: the echoes wait in the polling queue until the upgrade.
				if r := fx.Push(t, sid, "4early1\x1e4early2"); r.Status != http.StatusOK {
					t.Fatalf("POST during the upgrade: %v, want 200", r)
				}
				eiotest.Send(t, c, "5")
				for _, want := range []string{"4early1", "4early2"} {
					if _, s := eiotest.ReadSkipping(t, c, "6"); s != want {
						t.Fatalf("after the upgrade: %q, want %q", s, want)
					}
				}
				c.Close(ws.StatusNormalClosure, "")
			})

			t.Run("refuses polling after the upgrade with code 3 and keeps the WebSocket", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := upgrade(t, sid)
				eiotest.ExpectError(t, "GET", fx.Poll(t, sid), engineio.ErrorBadRequest)
				eiotest.ExpectError(t, "POST", fx.Push(t, sid, "4late"), engineio.ErrorBadRequest)
				eiotest.Send(t, c, "4still")
				if _, s := eiotest.ReadSkipping(t, c, "6"); s != "4still" {
					t.Fatalf("WebSocket after the refused polls: %q, want \"4still\"", s)
				}
				if fx.session(t, sid).isClosed() {
					t.Fatal("a refused poll closed the upgraded session")
				}
				c.Close(ws.StatusNormalClosure, "")
			})

			t.Run("keeps the session on polling when the WebSocket fails before the upgrade", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				c := fx.Probe(t, sid)
				c.CloseNow()
				if r := fx.Push(t, sid, "4still"); r.Status != http.StatusOK {
					t.Fatalf("POST after the failed upgrade: %v, want 200", r)
				}
				var got string
				for i := 0; i < 5 && got == ""; i++ {
					r := fx.PollSkippingPings(t, sid)
					if r.Status != http.StatusOK {
						t.Fatalf("poll after the failed upgrade: %v, want 200", r)
					}
					got = strings.TrimPrefix(strings.TrimPrefix(r.Body, "6"), "\x1e") // a noop may end a poll of the upgrade
				}
				if got != "4still" {
					t.Fatalf("echo over polling after the failed upgrade: %q, want \"4still\"", got)
				}
				if tr := fx.session(t, sid).s.Transport(); tr != engineio.TransportPolling {
					t.Fatalf("transport %q after the failed upgrade, want polling", tr)
				}
			})
		})

		t.Run("close", func(t *testing.T) {
			t.Run("closes a polling session with reason transport close when the client sends close", func(t *testing.T) {
				sid := fx.OpenPolling(t)
				if r := fx.Push(t, sid, "1"); r.Status != http.StatusOK {
					t.Fatalf("POST \"1\": %v, want 200", r)
				}
				fx.awaitCloseReason(t, sid, engineio.ReasonTransportClose)
				if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
					t.Errorf("poll after: %v, want 400", r)
				}
			})

			t.Run("closes a WebSocket session with reason transport close when the client sends close", func(t *testing.T) {
				c, sid := fx.OpenWebSocket(t)
				eiotest.Send(t, c, "1")
				eiotest.AwaitWSClose(t, c, false)
				fx.awaitCloseReason(t, sid, engineio.ReasonTransportClose)
			})

			t.Run("answers a pending poll with close when the server closes the session", func(t *testing.T) {
				eiotest.RetryOnPing(t, func(t *testing.T) (pinged bool) {
					sid := fx.OpenPolling(t)
					pending, pendingErr := fx.PollDuring(t, &fx.arrivals, sid, func() { fx.session(t, sid).s.Close() })
					if pendingErr != nil {
						t.Fatalf("pending poll: %v", pendingErr)
					}
					if rest, n := eiotest.DropPings(pending.Body); n > 0 && rest == "" {
						return true
					}
					if pending.Status != http.StatusOK || pending.Body != "1" {
						t.Errorf("pending poll: %v, want 200 \"1\" (close)", pending)
					}
					fx.awaitCloseReason(t, sid, engineio.ReasonForcedClose)
					if r := fx.Poll(t, sid); r.Status != http.StatusBadRequest {
						t.Errorf("poll after: %v, want 400", r)
					}
					return false
				})
			})
		})

		t.Run("CORS", func(t *testing.T) {
			origin := http.Header{"Origin": {"http://example.test"}}

			t.Run("allows any origin on polling requests", func(t *testing.T) {
				r, err := fx.Do(http.MethodGet, "EIO=4&transport=polling", nil, origin)
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("handshake: Access-Control-Allow-Origin %q, want *", got)
				}
				sid := eiotest.SIDOf(t, r.Body)
				r, err = fx.Do(http.MethodPost, eiotest.PollQuery(sid), strings.NewReader("4cors"), origin)
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Header.Get("Access-Control-Allow-Origin"); r.Status != http.StatusOK || got != "*" {
					t.Errorf("POST: %v, Access-Control-Allow-Origin %q; want 200 and *", r, got)
				}
				r, err = fx.Do(http.MethodGet, eiotest.PollQuery(sid), nil, origin)
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Header.Get("Access-Control-Allow-Origin"); r.Status != http.StatusOK || got != "*" {
					t.Errorf("poll: %v, Access-Control-Allow-Origin %q; want 200 and *", r, got)
				}
			})

			t.Run("answers a preflight with 204 and the allowed methods and headers", func(t *testing.T) {
				h := http.Header{
					"Origin":                         {"http://example.test"},
					"Access-Control-Request-Method":  {"POST"},
					"Access-Control-Request-Headers": {"content-type"},
				}
				r, err := fx.Do(http.MethodOptions, "EIO=4&transport=polling", nil, h)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != http.StatusNoContent {
					t.Errorf("preflight: %v, want 204", r)
				}
				if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
					t.Errorf("Access-Control-Allow-Origin %q, want *", got)
				}
				methods := strings.ToUpper(r.Header.Get("Access-Control-Allow-Methods"))
				for _, m := range []string{"GET", "POST"} {
					if !strings.Contains(methods, m) {
						t.Errorf("Access-Control-Allow-Methods %q lacks %s", methods, m)
					}
				}
				if got := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "content-type") {
					t.Errorf("Access-Control-Allow-Headers %q lacks content-type", got)
				}
			})
		})
	})
}
