package ws

import (
	"errors"
	"fmt"
)

// StatusCode is a close status code (RFC 6455 §7.4).
type StatusCode uint16

// Close status codes registered by RFC 6455 §7.4.1 and IANA.
const (
	StatusNormalClosure      StatusCode = 1000
	StatusGoingAway          StatusCode = 1001
	StatusProtocolError      StatusCode = 1002
	StatusUnsupportedData    StatusCode = 1003
	StatusNoStatusReceived   StatusCode = 1005 // never sent: the peer's close frame had no code
	StatusAbnormalClosure    StatusCode = 1006 // never sent: the connection ended without a close frame
	StatusInvalidPayload     StatusCode = 1007
	StatusPolicyViolation    StatusCode = 1008
	StatusMessageTooBig      StatusCode = 1009
	StatusMandatoryExtension StatusCode = 1010
	StatusInternalError      StatusCode = 1011
	StatusServiceRestart     StatusCode = 1012
	StatusTryAgainLater      StatusCode = 1013
	StatusBadGateway         StatusCode = 1014
	StatusTLSHandshake       StatusCode = 1015 // never sent
)

// validOnWire reports whether code may appear in a close frame.
func (code StatusCode) validOnWire() bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// maxCloseReason is the longest reason that fits in a close frame beside its code.
const maxCloseReason = maxControlPayload - 2

// CloseError reports how a connection ended. Reads return it once the connection is closed.
//
// Remote is true when the peer sent a close frame: Code and Reason are the peer's, and Code
// is StatusNoStatusReceived when the frame had no payload. Remote is false when this side
// ended the connection: Code is the code it sent (StatusProtocolError, StatusInvalidPayload,
// StatusMessageTooBig, ...) and Reason says why, or Code is StatusAbnormalClosure when the
// TCP connection ended without a close frame.
type CloseError struct {
	Code   StatusCode
	Reason string
	Remote bool
}

// Error says who closed the connection, with the code and reason.
func (e *CloseError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	if e.Reason == "" {
		return fmt.Sprintf("ws: closed by %s: %d", who, e.Code)
	}
	return fmt.Sprintf("ws: closed by %s: %d %s", who, e.Code, e.Reason)
}

// CloseStatus returns the code of the *CloseError in err's chain, or 0 when there is none.
func CloseStatus(err error) StatusCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// ErrClosed is returned by calls on a connection after Close or CloseNow, and by writes
// after a close frame was sent.
var ErrClosed = errors.New("ws: connection closed")
