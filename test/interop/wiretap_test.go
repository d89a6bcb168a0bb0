package interop

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireTap is a loopback TCP proxy in front of a WebSocket server that forwards
// every byte unchanged and records, per connection, the response's
// Sec-WebSocket-Extensions and the header of every frame in each direction.
// The permessage-deflate tests use it to see what went over the wire: whether
// a message was compressed (RSV1), its compressed size, and where RSV1 was set.
type wireTap struct {
	addr string // 127.0.0.1:port, to connect to instead of the server

	mu    sync.Mutex
	conns []*tapConn
	added chan struct{} // signalled when a connection is added
}

// wireFrame is one frame header seen by the tap.
type wireFrame struct {
	fin, rsv1, rsv2, rsv3 bool
	opcode                byte
	length                int64
}

// wireMsg is one data message as it crossed the wire.
type wireMsg struct {
	opcode     byte  // 1 text, 2 binary
	compressed bool  // RSV1 on the first frame
	wireLen    int64 // sum of the frames' payload lengths (compressed size)
	frames     []wireFrame
}

type tapConn struct {
	mu         sync.Mutex
	status     int
	extensions string         // the response's Sec-WebSocket-Extensions ("" if none)
	frames     [2][]wireFrame // [fromClient] in order
	problems   []string       // frames that break RFC 7692 framing rules
}

const (
	fromServer = 0
	fromClient = 1
)

// startWireTap proxies 127.0.0.1:random to target (host:port) until the test ends.
func startWireTap(t *testing.T, target string) *wireTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tap := &wireTap{addr: ln.Addr().String(), added: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	var open sync.Map // net.Conn -> true, closed at the end
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			open.Store(client, true)
			open.Store(server, true)
			tc := &tapConn{}
			tap.mu.Lock()
			tap.conns = append(tap.conns, tc)
			tap.mu.Unlock()
			select {
			case tap.added <- struct{}{}:
			default:
			}
			var pipes sync.WaitGroup
			pipes.Add(2)
			wg.Add(1)
			go func() { defer pipes.Done(); tc.pipe(server, client, fromClient) }()
			go func() { defer pipes.Done(); tc.pipe(client, server, fromServer) }()
			go func() {
				defer wg.Done()
				pipes.Wait()
				_ = client.Close()
				_ = server.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		open.Range(func(k, _ any) bool { _ = k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	return tap
}

// pipe copies src to dst: the HTTP head, then frame by frame, recording headers.
// At src's EOF it half-closes dst, so a close handshake passes through intact.
func (tc *tapConn) pipe(dst, src net.Conn, dir int) {
	defer func() {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
	}()
	br := bufio.NewReaderSize(src, 64<<10)
	// The HTTP head, forwarded byte for byte.
	var head strings.Builder
	var first string
	var exts []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		head.WriteString(line)
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if first == "" {
			first = line
		} else if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Sec-WebSocket-Extensions") {
			exts = append(exts, strings.TrimSpace(v))
		}
		if head.Len() > 64<<10 {
			return
		}
	}
	// Record the response before forwarding it: the client acts on it at once, and a test
	// may then ask what the tap saw.
	var status int
	if dir == fromServer {
		_, _ = fmt.Sscanf(first, "HTTP/1.1 %d", &status)
		tc.mu.Lock()
		tc.status = status
		tc.extensions = strings.Join(exts, ", ")
		tc.mu.Unlock()
	}
	if _, err := io.WriteString(dst, head.String()); err != nil {
		return
	}
	if dir == fromServer {
		if status != http.StatusSwitchingProtocols {
			_, _ = io.Copy(dst, br)
			return
		}
	}
	// Frames.
	var h [14]byte
	for {
		if _, err := io.ReadFull(br, h[:2]); err != nil {
			return
		}
		n := 2
		length := int64(h[1] & 0x7f)
		switch length {
		case 126:
			if _, err := io.ReadFull(br, h[2:4]); err != nil {
				return
			}
			length, n = int64(binary.BigEndian.Uint16(h[2:4])), 4
		case 127:
			if _, err := io.ReadFull(br, h[2:10]); err != nil {
				return
			}
			length, n = int64(binary.BigEndian.Uint64(h[2:10])), 10
		}
		if h[1]&0x80 != 0 { // mask key
			if _, err := io.ReadFull(br, h[n:n+4]); err != nil {
				return
			}
			n += 4
		}
		tc.record(dir, wireFrame{fin: h[0]&0x80 != 0, rsv1: h[0]&0x40 != 0, rsv2: h[0]&0x20 != 0, rsv3: h[0]&0x10 != 0,
			opcode: h[0] & 0x0f, length: length})
		if _, err := dst.Write(h[:n]); err != nil {
			return
		}
		if _, err := io.CopyN(dst, br, length); err != nil {
			return
		}
	}
}

func (tc *tapConn) record(dir int, f wireFrame) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	who := [2]string{"server", "client"}[dir]
	fs := tc.frames[dir]
	inMessage := false // the previous data frame was not final
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].opcode < 8 {
			inMessage = !fs[i].fin
			break
		}
	}
	switch {
	case f.rsv2 || f.rsv3:
		tc.problems = append(tc.problems, fmt.Sprintf("%s frame %d has RSV2/RSV3", who, len(fs)))
	case f.rsv1 && f.opcode >= 8:
		tc.problems = append(tc.problems, fmt.Sprintf("%s control frame %d (opcode %d) has RSV1", who, len(fs), f.opcode))
	case f.rsv1 && f.opcode == 0:
		tc.problems = append(tc.problems, fmt.Sprintf("%s continuation frame %d has RSV1", who, len(fs)))
	case f.opcode == 0 && !inMessage, (f.opcode == 1 || f.opcode == 2) && inMessage:
		tc.problems = append(tc.problems, fmt.Sprintf("%s frame %d (opcode %d) breaks fragmentation", who, len(fs), f.opcode))
	}
	tc.frames[dir] = append(fs, f)
}

// conn waits for the i-th connection through the tap (0-based).
func (tap *wireTap) conn(t testing.TB, i int) *tapConn {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		tap.mu.Lock()
		if i < len(tap.conns) {
			c := tap.conns[i]
			tap.mu.Unlock()
			return c
		}
		tap.mu.Unlock()
		select {
		case <-tap.added:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("wire tap: no connection #%d within 10s", i)
		}
	}
}

// messages returns the data messages sent so far in one direction.
func (tc *tapConn) messages(dir int) []wireMsg {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	var msgs []wireMsg
	open := false
	for _, f := range tc.frames[dir] {
		switch {
		case f.opcode == 1 || f.opcode == 2:
			msgs = append(msgs, wireMsg{opcode: f.opcode, compressed: f.rsv1})
			open = true
		case f.opcode == 0 && open:
		default:
			continue // control frames, and stray continuations (reported as problems)
		}
		m := &msgs[len(msgs)-1]
		m.wireLen += f.length
		m.frames = append(m.frames, f)
		if f.fin {
			open = false
		}
	}
	return msgs
}

func (tc *tapConn) responseExtensions() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.extensions
}

// checkFraming reports frames that break the rules of RFC 7692 §6.1 / RFC 6455 §5.4.
func (tc *tapConn) checkFraming(t testing.TB) {
	t.Helper()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, p := range tc.problems {
		t.Errorf("on the wire: %s", p)
	}
}
