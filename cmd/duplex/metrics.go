package main

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/ws"
)

// The label values of the metrics: the layer counted and its transport.
const (
	layerWS       = "ws"       // the raw WebSocket echo at /echo
	layerEngineIO = "engineio" // Engine.IO sessions (under Socket.IO, and the fixture's /engine.io/)
)

// metrics are the Prometheus collectors of "duplex serve", in a registry of its own (no
// global state). They are fed by the echo handler and by the Observers of the Engine.IO and
// Socket.IO servers (engineObserver, broadcastObserver); /metrics serves them.
type metrics struct {
	registry *prometheus.Registry

	handshakeFailures *prometheus.CounterVec // layer, reason
	wsCloses          *prometheus.CounterVec // code
	engineCloses      *prometheus.CounterVec // transport, reason
	fanOut            prometheus.Histogram

	// The series of each transport, resolved once so that counting a message is an atomic
	// add with no label lookup.
	echo, polling, websocket transportMetrics
}

// transportMetrics are the series of one layer and transport.
type transportMetrics struct {
	connections                                prometheus.Gauge
	messagesIn, messagesOut, bytesIn, bytesOut prometheus.Counter
}

func newMetrics() *metrics {
	connections := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "duplex_connections",
		Help: "Open connections: WebSocket connections of /echo (layer ws) and Engine.IO sessions by their current transport (layer engineio).",
	}, []string{"layer", "transport"})
	messages := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_messages_total",
		Help: "Messages received (direction in) and sent (out): WebSocket messages of /echo (layer ws), Engine.IO message packets (layer engineio; pings and other protocol packets not counted).",
	}, []string{"layer", "transport", "direction"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "duplex_message_bytes_total",
		Help: "Payload bytes of the messages counted by duplex_messages_total, before framing, base64 and compression.",
	}, []string{"layer", "transport", "direction"})
	m := &metrics{
		registry: prometheus.NewRegistry(),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_handshake_failures_total",
			Help: "Refused WebSocket handshakes of /echo by HTTP status text (layer ws) and requests the Engine.IO servers refused by Engine.IO error (layer engineio).",
		}, []string{"layer", "reason"}),
		wsCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_ws_closes_total",
			Help: "WebSocket connections of /echo ended, by close code (1006: no close frame).",
		}, []string{"code"}),
		engineCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_engineio_closes_total",
			Help: "Engine.IO sessions ended, by the transport they were on and the close reason.",
		}, []string{"transport", "reason"}),
		fanOut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "duplex_socketio_broadcast_recipients",
			Help:    "Socket.IO broadcasts by the number of sockets of this server each was queued for.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}),
	}
	resolve := func(layer, transport string) transportMetrics {
		return transportMetrics{
			connections: connections.WithLabelValues(layer, transport),
			messagesIn:  messages.WithLabelValues(layer, transport, "in"),
			messagesOut: messages.WithLabelValues(layer, transport, "out"),
			bytesIn:     bytes.WithLabelValues(layer, transport, "in"),
			bytesOut:    bytes.WithLabelValues(layer, transport, "out"),
		}
	}
	m.echo = resolve(layerWS, engineio.TransportWebSocket)
	m.polling = resolve(layerEngineIO, engineio.TransportPolling)
	m.websocket = resolve(layerEngineIO, engineio.TransportWebSocket)
	m.registry.MustRegister(connections, messages, bytes, m.handshakeFailures, m.wsCloses, m.engineCloses, m.fanOut,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the metrics in the Prometheus text format (or another format the scraper
// asks for); errors in gathering are logged.
func (m *metrics) handler(logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	})
}

// echoRefused counts a refused handshake of /echo.
func (m *metrics) echoRefused(err error) {
	reason := "other"
	var he *ws.HandshakeError
	if errors.As(err, &he) && http.StatusText(he.StatusCode) != "" {
		reason = http.StatusText(he.StatusCode)
	}
	m.handshakeFailures.WithLabelValues(layerWS, reason).Inc()
}

// echoClosed counts the end of an /echo connection with the close code of err, the error
// that ended it (1006 when it carries none).
func (m *metrics) echoClosed(err error) {
	code := ws.CloseStatus(err)
	if code == 0 {
		code = ws.StatusAbnormalClosure
	}
	m.wsCloses.WithLabelValues(strconv.Itoa(int(code))).Inc()
}

// engineObserver feeds the metrics from an Engine.IO server (engineio.Observer).
type engineObserver struct{ m *metrics }

func (o engineObserver) of(transport string) *transportMetrics {
	if transport == engineio.TransportPolling {
		return &o.m.polling
	}
	return &o.m.websocket
}

func (o engineObserver) SessionOpened(transport string) { o.of(transport).connections.Inc() }

func (o engineObserver) SessionUpgraded() {
	o.m.polling.connections.Dec()
	o.m.websocket.connections.Inc()
}

func (o engineObserver) SessionClosed(transport string, reason engineio.CloseReason) {
	o.of(transport).connections.Dec()
	o.m.engineCloses.WithLabelValues(transport, string(reason)).Inc()
}

func (o engineObserver) MessagesReceived(transport string, n, bytes int) {
	t := o.of(transport)
	t.messagesIn.Add(float64(n))
	t.bytesIn.Add(float64(bytes))
}

func (o engineObserver) MessagesSent(transport string, n, bytes int) {
	t := o.of(transport)
	t.messagesOut.Add(float64(n))
	t.bytesOut.Add(float64(bytes))
}

func (o engineObserver) RequestRefused(code engineio.ErrorCode) {
	o.m.handshakeFailures.WithLabelValues(layerEngineIO, code.String()).Inc()
}

// broadcastObserver feeds the fan-out histogram from a Socket.IO server (socketio.Observer).
type broadcastObserver struct{ m *metrics }

func (o broadcastObserver) Broadcast(_ string, recipients int) {
	o.m.fanOut.Observe(float64(recipients))
}
