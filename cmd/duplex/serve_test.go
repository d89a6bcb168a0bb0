package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// runMainEnv, set to 1 in its environment, makes the test binary run the command itself
// (main, with the arguments after the binary's name), so that a test can start "duplex" as
// a process of its own and signal it.
const runMainEnv = "DUPLEX_TEST_RUN_MAIN"

// Every test of the package must leave no goroutine behind.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// httpGet fetches url with client (nil: a client of its own that uses no proxy) and returns
// the status and body.
func httpGet(t *testing.T, client *http.Client, url string, header http.Header) (int, string) {
	t.Helper()
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: eiotest.WaitLimit}
		defer client.CloseIdleConnections()
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, string(b)
}

// scrape reads /metrics and parses the Prometheus text format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := httpGet(t, nil, base+"/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d %q", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	return families
}

// series names one series: a metric and its labels, "name=value" joined by commas.
type series struct {
	name, labels string
}

// metric returns the series of name with labels given as name, value pairs.
func metric(name string, labels ...string) series {
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+labels[i+1])
	}
	return series{name, strings.Join(pairs, ",")}
}

// value returns the value of the series in families (a histogram's count) and whether it is
// there.
func (s series) value(families map[string]*dto.MetricFamily) (float64, bool) {
	mf := families[s.name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for pair := range strings.SplitSeq(s.labels, ",") {
			if name, value, _ := strings.Cut(pair, "="); pair != "" && have[name] != value {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// awaitMetrics scrapes until every series has its value (the counts of what a client has
// just seen may be added a moment later), and fails with the values it last saw.
func awaitMetrics(t *testing.T, base string, want map[series]float64) map[string]*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(eiotest.WaitLimit)
	for {
		families := scrape(t, base)
		var wrong []string
		for s, v := range want {
			if got, ok := s.value(families); !ok || got != v {
				wrong = append(wrong, fmtSeries(s, got, ok, v))
			}
		}
		if len(wrong) == 0 {
			return families
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", strings.Join(wrong, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fmtSeries(s series, got float64, ok bool, want float64) string {
	if !ok {
		return s.name + "{" + s.labels + "}: missing"
	}
	return s.name + "{" + s.labels + "}: " + model.SampleValue(got).String() + ", want " + model.SampleValue(want).String()
}

// quickClose makes the polling sessions a test leaves open end soon after the shutdown
// starts: a closing session waits for its client's next poll at most the ping timeout.
// (With a ping interval of 25 s, no test sees a ping.)
var quickClose = []string{"--ping-timeout", "100ms"}

// dialEcho opens a WebSocket to /echo with opts (nil: none).
func dialEcho(t *testing.T, url string, opts *ws.DialOptions) *ws.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eiotest.WaitLimit)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// echo sends one message and checks that it comes back the same.
func echo(t *testing.T, c *ws.Conn, typ ws.MessageType, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eiotest.WaitLimit)
	defer cancel()
	if err := c.WriteMessage(ctx, typ, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if gt, got, err := c.ReadMessage(ctx); err != nil || gt != typ || string(got) != data {
		t.Fatalf("echo of %v %q: %v %q %v", typ, data, gt, got, err)
	}
}

// handshakeStatus returns the status of a WebSocket handshake to url with header, 101 when
// it succeeds.
func handshakeStatus(t *testing.T, url string, header http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eiotest.WaitLimit)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, &ws.DialOptions{Header: header})
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	var he *ws.HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("dial %s: %v", url, err)
	}
	return he.StatusCode
}

// Both ways of serving WebSockets: a goroutine each, and --event-loop.
func TestServeHealthzAndMetricsFollowEchoAndSocketIO(t *testing.T) {
	for _, mode := range [][]string{nil, {"--event-loop"}} {
		t.Run(fmt.Sprint("flags", mode), func(t *testing.T) {
			s := startServing(t, append(mode, quickClose...)...)
			if status, body := httpGet(t, nil, s.base+"/healthz", nil); status != http.StatusOK || body != "ok" {
				t.Fatalf("/healthz: %d %q, want 200 \"ok\"", status, body)
			}

			// Refused handshakes: a foreign page on /echo, an Engine.IO v3 client on /socket.io/.
			if got := handshakeStatus(t, s.echoURL, origin); got != http.StatusForbidden {
				t.Fatalf("/echo from another origin: %d, want 403", got)
			}
			if r := eiotest.NewClient(t, s.base+"/socket.io/").MustDo(t, http.MethodGet, "EIO=3&transport=polling", nil); r.Status != http.StatusBadRequest {
				t.Fatalf("EIO=3: %v, want 400", r)
			}

			// /echo: two messages of 5 and 3 bytes each way, one connection, then closed with 1000.
			c := dialEcho(t, s.echoURL, nil)
			echo(t, c, ws.MessageText, "hello")
			echo(t, c, ws.MessageBinary, "\x00\x01\x02")
			awaitMetrics(t, s.base, map[series]float64{
				metric("duplex_connections", "layer", "ws", "transport", "websocket"):                                    1,
				metric("duplex_messages_total", "layer", "ws", "transport", "websocket", "direction", "in"):              2,
				metric("duplex_messages_total", "layer", "ws", "transport", "websocket", "direction", "out"):             2,
				metric("duplex_message_bytes_total", "layer", "ws", "transport", "websocket", "direction", "in"):         8,
				metric("duplex_message_bytes_total", "layer", "ws", "transport", "websocket", "direction", "out"):        8,
				metric("duplex_handshake_failures_total", "layer", "ws", "reason", "Forbidden"):                          1,
				metric("duplex_handshake_failures_total", "layer", "engineio", "reason", "Unsupported protocol version"): 1,
			})
			if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}

			// Socket.IO: two sockets over WebSocket join a room, one broadcasts to it; a polling
			// session opens beside them.
			a, b := dialSocketIO(t, s.echoURL), dialSocketIO(t, s.echoURL)
			a.connect("", "")
			b.connect("", "")
			a.call(1, `["join","r"]`, `[]`)
			b.call(1, `["join","r"]`, `[]`)
			a.call(2, `["broadcast","r","hi"]`, `[]`)
			b.expect(`42["msg","hi"]`)
			if r := eiotest.NewClient(t, s.base+"/socket.io/").MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil); r.Status != http.StatusOK {
				t.Fatalf("polling handshake: %v", r)
			}

			families := awaitMetrics(t, s.base, map[series]float64{
				metric("duplex_connections", "layer", "ws", "transport", "websocket"):       0,
				metric("duplex_ws_closes_total", "code", "1000"):                            1,
				metric("duplex_connections", "layer", "engineio", "transport", "websocket"): 2,
				metric("duplex_connections", "layer", "engineio", "transport", "polling"):   1,
				// In: 2 CONNECTs, 2 joins, 1 broadcast. Out: 2 CONNECT answers and 2 "auth"
				// events (the fixture's), 3 acks, 1 msg.
				metric("duplex_messages_total", "layer", "engineio", "transport", "websocket", "direction", "in"):  5,
				metric("duplex_messages_total", "layer", "engineio", "transport", "websocket", "direction", "out"): 8,
				metric("duplex_socketio_broadcast_recipients"):                                                     1,
			})
			if h := families["duplex_socketio_broadcast_recipients"].GetMetric()[0].GetHistogram(); h.GetSampleSum() != 1 {
				t.Errorf("broadcast recipients sum %v, want 1 (b alone)", h.GetSampleSum())
			}
			if v, _ := metric("duplex_message_bytes_total", "layer", "engineio", "transport", "websocket", "direction", "in").value(families); v == 0 {
				t.Error("no Engine.IO bytes in")
			}

			if st := s.stop(); st != 0 {
				t.Fatalf("serve exited with %d; stderr:\n%s", st, s.stderr)
			}
			a.awaitClose()
			b.awaitClose()
		})
	}
}

func TestServeHealthzAnswers503WhileShuttingDown(t *testing.T) {
	s := startServing(t)
	// A client that never reads holds the shutdown up: the server waits for its answer to
	// the close frame.
	c := dialEcho(t, s.echoURL, nil)
	stopped := make(chan int, 1)
	go func() { stopped <- s.stop() }()
	deadline := time.Now().Add(eiotest.WaitLimit)
	for {
		status, _ := httpGet(t, nil, s.base+"/healthz", nil)
		if status == http.StatusServiceUnavailable {
			break
		}
		if status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("/healthz during shutdown: %d, want 503", status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.CloseNow()
	if st := <-stopped; st != 0 {
		t.Fatalf("serve exited with %d; stderr:\n%s", st, s.stderr)
	}
}

func TestServeCORSOriginAppliesToEchoAndSocketIO(t *testing.T) {
	from := func(o string) http.Header { return http.Header{"Origin": {o}} }
	t.Run("default: same origin only", func(t *testing.T) {
		s := startServing(t, quickClose...)
		sio := eiotest.NewClient(t, s.base+"/socket.io/")
		if r, err := sio.Do(http.MethodGet, "EIO=4&transport=polling", nil, from("https://elsewhere.test")); err != nil || r.Status != http.StatusForbidden {
			t.Errorf("Socket.IO handshake from another origin: %v %v, want 403", r, err)
		}
		if r, err := sio.Do(http.MethodGet, "EIO=4&transport=polling", nil, from(s.base)); err != nil || r.Status != http.StatusOK {
			t.Errorf("Socket.IO handshake from the server's origin: %v %v, want 200", r, err)
		}
		if got := handshakeStatus(t, s.echoURL, from("https://elsewhere.test")); got != http.StatusForbidden {
			t.Errorf("/echo from another origin: %d, want 403", got)
		}
		if st := s.stop(); st != 0 {
			t.Fatalf("serve exited with %d", st)
		}
	})
	t.Run("listed origins", func(t *testing.T) {
		s := startServing(t, append(quickClose, "--cors-origin", "https://app.example", "--cors-origin", "https://*.other.test,http://third.test")...)
		sio := eiotest.NewClient(t, s.base+"/socket.io/")
		for _, o := range []string{"https://app.example", "https://x.other.test", "http://third.test"} {
			r, err := sio.Do(http.MethodGet, "EIO=4&transport=polling", nil, from(o))
			if err != nil || r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != o {
				t.Errorf("Socket.IO handshake from %s: %v %v (Access-Control-Allow-Origin %q), want 200 and the origin allowed", o, r, err, r.Header.Get("Access-Control-Allow-Origin"))
			}
			if got := handshakeStatus(t, s.echoURL, from(o)); got != http.StatusSwitchingProtocols {
				t.Errorf("/echo from %s: %d, want 101", o, got)
			}
			if got := handshakeStatus(t, sio.WSURL+"?EIO=4&transport=websocket", from(o)); got != http.StatusSwitchingProtocols {
				t.Errorf("Socket.IO WebSocket from %s: %d, want 101", o, got)
			}
		}
		if r, err := sio.Do(http.MethodGet, "EIO=4&transport=polling", nil, from("https://evil.test")); err != nil || r.Status != http.StatusForbidden {
			t.Errorf("Socket.IO handshake from an unlisted origin: %v %v, want 403", r, err)
		}
		if got := handshakeStatus(t, sio.WSURL+"?EIO=4&transport=websocket", from("https://evil.test")); got != http.StatusForbidden {
			t.Errorf("Socket.IO WebSocket from an unlisted origin: %d, want 403", got)
		}
		if got := handshakeStatus(t, s.echoURL, from("https://evil.test")); got != http.StatusForbidden {
			t.Errorf("/echo from an unlisted origin: %d, want 403", got)
		}
		if st := s.stop(); st != 0 {
			t.Fatalf("serve exited with %d", st)
		}
	})
}

func TestServePathMovesSocketIO(t *testing.T) {
	s := startServing(t, append(quickClose, "--path", "/rt")...)
	if r := eiotest.NewClient(t, s.base+"/rt/").MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil); r.Status != http.StatusOK {
		t.Errorf("handshake at /rt/: %v, want 200", r)
	}
	if r := eiotest.NewClient(t, s.base+"/socket.io/").MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil); r.Status != http.StatusNotFound {
		t.Errorf("handshake at /socket.io/: %v, want 404", r)
	}
	if st := s.stop(); st != 0 {
		t.Fatalf("serve exited with %d", st)
	}
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts it.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "duplex test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeOverTLSWithASelfSignedCertificate(t *testing.T) {
	certFile, keyFile, pool := selfSignedCert(t, t.TempDir())
	s := startServing(t, append(quickClose, "--tls-cert", certFile, "--tls-key", keyFile)...)
	if !strings.HasPrefix(s.echoURL, "wss://") || !strings.HasPrefix(s.base, "https://") {
		t.Fatalf("URLs %s and %s, want wss:// and https://", s.echoURL, s.base)
	}
	tlsConfig := &tls.Config{RootCAs: pool}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig}, Timeout: eiotest.WaitLimit}
	defer client.CloseIdleConnections()
	if status, body := httpGet(t, client, s.base+"/healthz", nil); status != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz over TLS: %d %q", status, body)
	}
	if status, body := httpGet(t, client, s.base+"/socket.io/?EIO=4&transport=polling", nil); status != http.StatusOK || !strings.HasPrefix(body, "0{") {
		t.Fatalf("Socket.IO handshake over TLS: %d %q", status, body)
	}
	c := dialEcho(t, s.echoURL, &ws.DialOptions{TLSConfig: tlsConfig})
	echo(t, c, ws.MessageText, "over tls")
	done := make(chan error, 1)
	go func() { _, _, err := c.ReadMessage(context.Background()); done <- err }()
	if st := s.stop(); st != 0 {
		t.Fatalf("serve exited with %d; stderr:\n%s", st, s.stderr)
	}
	if err := <-done; ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
}

func TestServeLogsAtTheLevelAndInTheFormatAsked(t *testing.T) {
	// What is logged: the start, a refused /echo handshake (info), an echo connection
	// (debug), the shutdown.
	exercise := func(t *testing.T, args ...string) string {
		s := startServing(t, args...)
		handshakeStatus(t, s.echoURL, origin)
		c := dialEcho(t, s.echoURL, nil)
		echo(t, c, ws.MessageText, "x")
		c.Close(ws.StatusNormalClosure, "")
		if st := s.stop(); st != 0 {
			t.Fatalf("serve exited with %d; stderr:\n%s", st, s.stderr)
		}
		return s.stderr.String()
	}
	t.Run("json debug", func(t *testing.T) {
		out := exercise(t, "--log-format", "json", "--log-level", "debug")
		levels := map[string]bool{}
		msgs := map[string]bool{}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var line struct {
				Level, Msg string
				Peer       string
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Level == "" || line.Msg == "" {
				t.Fatalf("not a JSON log line with level and msg: %q (%v)", sc.Text(), err)
			}
			levels[line.Level], msgs[line.Msg] = true, true
			if line.Msg == "echo: handshake refused" && line.Peer == "" {
				t.Errorf("the refusal does not name the peer: %q", sc.Text())
			}
		}
		for _, m := range []string{"duplex serve listening", "echo: handshake refused", "echo: connected", "duplex serve stopped"} {
			if !msgs[m] {
				t.Errorf("no %q in the log:\n%s", m, out)
			}
		}
		if !levels["DEBUG"] || !levels["INFO"] {
			t.Errorf("levels %v, want DEBUG and INFO", levels)
		}
	})
	t.Run("text info", func(t *testing.T) {
		out := exercise(t)
		if !strings.Contains(out, "level=INFO msg=\"echo: handshake refused\"") || strings.Contains(out, "level=DEBUG") {
			t.Errorf("log at the default level, text:\n%s", out)
		}
	})
	t.Run("error", func(t *testing.T) {
		if out := exercise(t, "--log-level", "error"); out != "" {
			t.Errorf("nothing to log at level error, got:\n%s", out)
		}
	})
}

func TestServeRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--log-level", "loud"}, {"--log-format", "xml"}, {"--tls-cert", "cert.pem"},
		{"--tls-cert", "missing.pem", "--tls-key", "missing.pem"}, {"--path", "/"},
		{"--fixture", "--path", "/engine.io/"}, {"--cors-origin", "[bad"}, {"extra"},
	} {
		var stdout, stderr strings.Builder
		argv := append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
		if s := run(context.Background(), argv, strings.NewReader(""), &stdout, &stderr); s != 1 {
			t.Errorf("%q: status %d, want 1 (stderr %q)", args, s, stderr.String())
		}
		if stdout.Len() > 0 {
			t.Errorf("%q: printed %q, want nothing on stdout", args, stdout.String())
		}
	}
}

// TestServeProcessOnSIGTERM runs the command as a process of its own (the test binary
// running main) and signals it as a service manager would.
func TestServeProcessOnSIGTERMClosesWebSocketsWith1001AndExits0(t *testing.T) {
	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	firstLine := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			firstLine <- sc.Text()
		}
		close(firstLine)
		for sc.Scan() {
		}
		exited <- cmd.Wait() // after the last read of stdout, as exec requires
	}()
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var line string
	select {
	case line = <-firstLine:
	case <-time.After(eiotest.WaitLimit):
		t.Fatalf("the process printed nothing; stderr:\n%s", stderr)
	}
	echoURL := echoURLPattern.FindString(line)
	if echoURL == "" {
		t.Fatalf("no echo URL in %q; stderr:\n%s", line, stderr)
	}
	c := dialEcho(t, echoURL, nil)
	echo(t, c, ws.MessageText, "before the signal")
	sio := dialSocketIO(t, echoURL)
	sio.connect("", "")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), eiotest.WaitLimit)
	defer cancel()
	if _, _, err := c.ReadMessage(ctx); ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Errorf("/echo client saw %v, want close 1001", err)
	}
	if err := readUntilCloseCode(sio.c); ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Errorf("Socket.IO client saw %v, want close 1001", err)
	}
	select {
	case err := <-exited:
		waited = true
		if err != nil {
			t.Fatalf("the process ended with %v, want exit status 0; stderr:\n%s", err, stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the process did not exit after SIGTERM; stderr:\n%s", stderr)
	}
}

// readUntilCloseCode reads (answering pings) until the connection ends and returns the error
// that ended it.
func readUntilCloseCode(c *ws.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), eiotest.WaitLimit)
	defer cancel()
	for {
		typ, b, err := c.ReadMessage(ctx)
		if err != nil {
			return err
		}
		if typ == ws.MessageText && string(b) == "2" {
			_ = c.WriteMessage(ctx, ws.MessageText, []byte("3"))
		}
	}
}

func TestServeExitsWithAnErrorWhenTheShutdownTimeoutCutsConnections(t *testing.T) {
	s := startServing(t, "--shutdown-timeout", "50ms")
	c := dialEcho(t, s.echoURL, nil) // never answers the close frame
	if st := s.stop(); st != 1 {
		t.Fatalf("serve exited with %d, want 1", st)
	}
	if out := s.stderr.String(); !strings.Contains(out, "--shutdown-timeout 50ms") {
		t.Errorf("stderr does not say the timeout cut connections:\n%s", out)
	}
	c.CloseNow()
}
