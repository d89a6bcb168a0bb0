package engineio

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestHandshakeJSONMatchesNodeServer(t *testing.T) {
	tests := []struct {
		name string
		h    Handshake
		want string
	}{
		{
			"polling session",
			Handshake{SID: "lv_VI97HAXpY6yYWAAAC", Upgrades: []string{"websocket"}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000},
			`{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`,
		},
		{
			"nil upgrades encode as an empty array",
			Handshake{SID: "abc", PingInterval: 300, PingTimeout: 200, MaxPayload: 1e6},
			`{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}`,
		},
		{
			"several upgrades",
			Handshake{SID: "s", Upgrades: []string{"websocket", "webtransport"}},
			`{"sid":"s","upgrades":["websocket","webtransport"],"pingInterval":0,"pingTimeout":0,"maxPayload":0}`,
		},
		{
			"escaped sid",
			Handshake{SID: "a\"b\\c\n<&>\u2028\x01\xff"},
			`{"sid":"a\"b\\c\n<&>` + "\u2028" + `\u0001\ufffd","upgrades":[],"pingInterval":0,"pingTimeout":0,"maxPayload":0}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.h.AppendJSON(nil)
			if string(got) != tt.want {
				t.Errorf("AppendJSON = %s\nwant         %s", got, tt.want)
			}
			// encoding/json uses MarshalJSON (and may escape more, e.g. '<' as \u003c).
			m, err := json.Marshal(tt.h)
			var viaJSON, viaAppend any
			if err != nil || json.Unmarshal(m, &viaJSON) != nil || json.Unmarshal(got, &viaAppend) != nil ||
				!reflect.DeepEqual(viaJSON, viaAppend) {
				t.Errorf("json.Marshal = %s, %v", m, err)
			}
			if p := tt.h.Packet(); p.Type != Open || string(p.Data) != tt.want {
				t.Errorf("Packet() = %+v", p)
			}
		})
	}
}

func TestParseHandshakeReadsOpenPacketData(t *testing.T) {
	data := []byte(`{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000,"extra":true}`)
	h, err := ParseHandshake(data)
	want := Handshake{SID: "abc", Upgrades: []string{"websocket"}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Errorf("ParseHandshake = %+v, %v; want %+v", h, err, want)
	}
	if _, err := ParseHandshake([]byte(`{"sid":`)); err == nil {
		t.Error("ParseHandshake accepted truncated JSON")
	}
	if _, err := ParseHandshake([]byte(`{"pingInterval":"25000"}`)); err == nil {
		t.Error("ParseHandshake accepted a string interval")
	}
}

func TestErrorJSONHasNodeMessages(t *testing.T) {
	tests := []struct {
		code   ErrorCode
		body   string
		status int
	}{
		{ErrorTransportUnknown, `{"code":0,"message":"Transport unknown"}`, 400},
		{ErrorSessionIDUnknown, `{"code":1,"message":"Session ID unknown"}`, 400},
		{ErrorBadHandshakeMethod, `{"code":2,"message":"Bad handshake method"}`, 400},
		{ErrorBadRequest, `{"code":3,"message":"Bad request"}`, 400},
		{ErrorForbidden, `{"code":4,"message":"Forbidden"}`, 403},
		{ErrorUnsupportedProtocolVersion, `{"code":5,"message":"Unsupported protocol version"}`, 400},
		{ErrorCode(9), `{"code":9}`, 400},
	}
	for _, tt := range tests {
		if got := AppendErrorJSON(nil, tt.code, ""); string(got) != tt.body {
			t.Errorf("AppendErrorJSON(%d) = %s, want %s", tt.code, got, tt.body)
		}
		if got := tt.code.HTTPStatus(); got != tt.status {
			t.Errorf("ErrorCode(%d).HTTPStatus() = %d, want %d", tt.code, got, tt.status)
		}
	}
	if got, want := AppendErrorJSON(nil, ErrorForbidden, `no "guests"`), `{"code":4,"message":"no \"guests\""}`; string(got) != want {
		t.Errorf("custom message: %s, want %s", got, want)
	}
	if got := ErrorCode(9).String(); got != "ErrorCode(9)" {
		t.Errorf("String of an unknown code = %q", got)
	}
	if got := ErrorBadRequest.String(); got != "Bad request" {
		t.Errorf("String = %q", got)
	}
}
