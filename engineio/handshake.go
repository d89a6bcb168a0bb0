package engineio

import (
	"encoding/json"
	"strconv"

	"github.com/duplexio/duplex/internal/jsonstr"
)

// Handshake is the JSON data of the Open packet, with which the server starts a session.
// Durations are in milliseconds and MaxPayload in bytes, as on the wire.
type Handshake struct {
	// SID is the session id, sent back by the client on every later request.
	SID string `json:"sid"`
	// Upgrades lists the transports the client may upgrade to: ["websocket"] for a polling
	// session, empty for a WebSocket one. It is encoded as [] when nil, never null.
	Upgrades []string `json:"upgrades"`
	// PingInterval is the time between two server pings.
	PingInterval int `json:"pingInterval"`
	// PingTimeout is how long the server waits for a pong (and the client's grace after
	// PingInterval).
	PingTimeout int `json:"pingTimeout"`
	// MaxPayload is the largest number of bytes the server accepts in a POST body, which the
	// client uses to split what it sends.
	MaxPayload int `json:"maxPayload"`
}

// AppendJSON appends the handshake's JSON to dst, in the field order of the Node server:
// {"sid":"...","upgrades":[...],"pingInterval":N,"pingTimeout":N,"maxPayload":N}. Strings
// are escaped as JavaScript's JSON.stringify does (invalid UTF-8 becomes U+FFFD). It
// allocates only when dst must grow.
func (h Handshake) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"sid":`...)
	dst = jsonstr.Append(dst, h.SID)
	dst = append(dst, `,"upgrades":[`...)
	for i, u := range h.Upgrades {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonstr.Append(dst, u)
	}
	dst = append(dst, `],"pingInterval":`...)
	dst = strconv.AppendInt(dst, int64(h.PingInterval), 10)
	dst = append(dst, `,"pingTimeout":`...)
	dst = strconv.AppendInt(dst, int64(h.PingTimeout), 10)
	dst = append(dst, `,"maxPayload":`...)
	dst = strconv.AppendInt(dst, int64(h.MaxPayload), 10)
	return append(dst, '}')
}

// MarshalJSON returns AppendJSON(nil); it never fails.
func (h Handshake) MarshalJSON() ([]byte, error) { return h.AppendJSON(nil), nil }

// Packet returns the Open packet that carries h.
func (h Handshake) Packet() Packet { return Packet{Type: Open, Data: h.AppendJSON(nil)} }

// ParseHandshake decodes the data of an Open packet. Unknown fields are ignored, as a
// JavaScript client ignores them; a JSON error is returned as encoding/json reports it.
func ParseHandshake(data []byte) (Handshake, error) {
	var h Handshake
	if err := json.Unmarshal(data, &h); err != nil {
		return Handshake{}, err
	}
	return h, nil
}

// ErrorCode is the code of an Engine.IO error answer: the HTTP 400 (403 for Forbidden) body
// {"code":N,"message":"..."} that refuses a request.
type ErrorCode int

// The error codes of Engine.IO v4, as the Node server numbers them.
const (
	// ErrorTransportUnknown: the transport query parameter is missing, unknown or not allowed.
	ErrorTransportUnknown ErrorCode = 0
	// ErrorSessionIDUnknown: no session has the sid of the request.
	ErrorSessionIDUnknown ErrorCode = 1
	// ErrorBadHandshakeMethod: a handshake (a request without sid) that is not a GET.
	ErrorBadHandshakeMethod ErrorCode = 2
	// ErrorBadRequest: a malformed request, e.g. a transport that does not match the session's.
	ErrorBadRequest ErrorCode = 3
	// ErrorForbidden: the application refused the handshake.
	ErrorForbidden ErrorCode = 4
	// ErrorUnsupportedProtocolVersion: EIO is missing or not 4.
	ErrorUnsupportedProtocolVersion ErrorCode = 5
)

var errorMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

// Message returns the Node server's message for c ("Transport unknown", ...), or "" for a
// code outside the six of the protocol.
func (c ErrorCode) Message() string {
	if c >= 0 && int(c) < len(errorMessages) {
		return errorMessages[c]
	}
	return ""
}

// String returns Message, or "ErrorCode(N)" for an unknown code.
func (c ErrorCode) String() string {
	if m := c.Message(); m != "" {
		return m
	}
	return "ErrorCode(" + strconv.Itoa(int(c)) + ")"
}

// HTTPStatus returns the status of the answer that carries c, as the Node server sends it:
// 403 for ErrorForbidden, 400 for every other code.
func (c ErrorCode) HTTPStatus() int {
	if c == ErrorForbidden {
		return 403
	}
	return 400
}

// AppendErrorJSON appends the body of an error answer, {"code":N,"message":"..."}, to dst.
// The message is c.Message(), unless message is not empty: the Node server sends the
// application's own message when it refuses a handshake (ErrorForbidden). With an unknown
// code and no message, the message field is left out, as JSON.stringify leaves out an
// undefined value. The body goes with Content-Type: application/json.
func AppendErrorJSON(dst []byte, c ErrorCode, message string) []byte {
	if message == "" {
		message = c.Message()
	}
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c), 10)
	if message != "" {
		dst = append(dst, `,"message":`...)
		dst = jsonstr.Append(dst, message)
	}
	return append(dst, '}')
}
