package ws

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
)

// acceptGUID is the fixed string RFC 6455 §1.3 appends to the key before hashing.
const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
// base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
func AcceptKey(challengeKey string) string {
	h := sha1.New()
	h.Write([]byte(challengeKey))
	h.Write([]byte(acceptGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// HandshakeError reports a failed opening handshake. On the server it says which HTTP status
// was answered and why; on the client it carries the server's answer when it was not a valid
// 101 Switching Protocols response.
type HandshakeError struct {
	StatusCode int         // HTTP status answered (server) or received (client)
	Reason     string      // what was wrong
	Header     http.Header // response headers received (client only)
	Body       []byte      // start of the response body received (client only; at most 4 KiB)
}

// Error describes the failure with its HTTP status.
func (e *HandshakeError) Error() string {
	if e.StatusCode == 0 {
		return "ws: handshake failed: " + e.Reason
	}
	return fmt.Sprintf("ws: handshake failed: %d %s: %s", e.StatusCode, http.StatusText(e.StatusCode), e.Reason)
}

// headerHasToken reports whether a comma-separated token list header (its values may be
// split over several header lines) contains token, compared case-insensitively.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// headerTokens returns the tokens of a comma-separated list header, in order.
func headerTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if t := strings.TrimSpace(part); t != "" {
				out = append(out, t)
			}
		}
	}
	return out
}
