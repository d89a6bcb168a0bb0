package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

// allTypes lists the seven packet types, for tables that cover every one.
var allTypes = []PacketType{Connect, Disconnect, Event, Ack, ConnectErrorPacket, BinaryEvent, BinaryAck}

func equalPacket(a, b Packet) bool {
	return a.Type == b.Type && a.Namespace == b.Namespace && a.ID == b.ID && a.HasID == b.HasID &&
		a.Attachments == b.Attachments && bytes.Equal(a.Data, b.Data)
}

func TestPacketTypeStringNamesEveryType(t *testing.T) {
	want := map[PacketType]string{
		Connect: "CONNECT", Disconnect: "DISCONNECT", Event: "EVENT", Ack: "ACK",
		ConnectErrorPacket: "CONNECT_ERROR", BinaryEvent: "BINARY_EVENT", BinaryAck: "BINARY_ACK",
		7: "PacketType(7)", 255: "PacketType(255)",
	}
	for typ, name := range want {
		if got := typ.String(); got != name {
			t.Errorf("PacketType(%d).String() = %q, want %q", uint8(typ), got, name)
		}
		if typ.Valid() != (typ <= 6) {
			t.Errorf("PacketType(%d).Valid() = %v", uint8(typ), typ.Valid())
		}
	}
}

func TestAppendPacketWritesEachField(t *testing.T) {
	tests := []struct {
		name string
		p    Packet
		want string
	}{
		{"connect to main namespace", Packet{Type: Connect}, "0"},
		{"explicit main namespace is omitted", Packet{Type: Connect, Namespace: "/"}, "0"},
		{"connect with auth", Packet{Type: Connect, Namespace: "/admin", Data: []byte(`{"token":"123"}`)}, `0/admin,{"token":"123"}`},
		{"namespace always ends with a comma", Packet{Type: Disconnect, Namespace: "/admin"}, "1/admin,"},
		{"event with ack id", Packet{Type: Event, Namespace: "/admin", ID: 456, HasID: true, Data: []byte(`["project:delete",123]`)}, `2/admin,456["project:delete",123]`},
		{"ack id 0 is written", Packet{Type: Event, HasID: true, Data: []byte(`["a"]`)}, `20["a"]`},
		{"ID ignored without HasID", Packet{Type: Event, ID: 9, Data: []byte(`["a"]`)}, `2["a"]`},
		{"binary event", Packet{Type: BinaryEvent, Attachments: 1, Data: []byte(`["hello",{"_placeholder":true,"num":0}]`)}, `51-["hello",{"_placeholder":true,"num":0}]`},
		{"binary ack with everything", Packet{Type: BinaryAck, Attachments: 1, Namespace: "/admin", ID: 456, HasID: true, Data: []byte(`[{"_placeholder":true,"num":0}]`)}, `61-/admin,456[{"_placeholder":true,"num":0}]`},
		{"binary type with no attachment", Packet{Type: BinaryEvent, Data: []byte(`["a"]`)}, `50-["a"]`},
		{"attachment count ignored on other types", Packet{Type: Event, Attachments: 3, Data: []byte(`["a"]`)}, `2["a"]`},
		{"invalid type written in decimal", Packet{Type: 12}, "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendPacket([]byte("prefix"), &tt.p)
			if string(got) != "prefix"+tt.want {
				t.Errorf("AppendPacket = %q, want %q", got, "prefix"+tt.want)
			}
		})
	}
}

// validData gives, for each type, a payload of the right shape (placeholders for one
// attachment in the binary types).
var validData = map[PacketType][]string{
	Connect:            {"", `{"token":"123"}`},
	Disconnect:         {""},
	Event:              {`["hello",1,{"a":[true,null]}]`, `[1,"a",{}]`},
	Ack:                {`[]`, `["a",1,{}]`},
	ConnectErrorPacket: {`{"message":"Not authorized","data":{"code":7}}`, `"Unauthorized"`},
	BinaryEvent:        {`["hello",{"_placeholder":true,"num":0}]`},
	BinaryAck:          {`[{"a":[{"_placeholder":true,"num":0}]}]`},
}

func TestParsePacketRoundTripsEveryType(t *testing.T) {
	for _, typ := range allTypes {
		for _, nsp := range []string{"/", "/admin", "/a/b-c_d:é"} {
			for _, id := range []int64{-1, 0, 456, math.MaxInt64} {
				withID := id >= 0
				if withID != (typ == Ack || typ == BinaryAck) && (typ != Event && typ != BinaryEvent) {
					continue // only events and acks carry an id, and acks must
				}
				for _, data := range validData[typ] {
					p := Packet{Type: typ, Namespace: nsp, HasID: withID, Data: []byte(data)}
					if withID {
						p.ID = uint64(id)
					}
					if typ.binary() {
						p.Attachments = 1
					}
					if err := p.Validate(); err != nil {
						t.Fatalf("Validate(%+v): %v", p, err)
					}
					text := AppendPacket(nil, &p)
					got, err := ParsePacket(text, 0)
					if err != nil {
						t.Fatalf("ParsePacket(%q): %v", text, err)
					}
					if !equalPacket(got, p) {
						t.Errorf("ParsePacket(%q) = %+v, want %+v", text, got, p)
					}
				}
			}
		}
	}
}

func TestParsePacketReadsProtocolExamples(t *testing.T) {
	ph := func(n string) string { return `{"_placeholder":true,"num":` + n + `}` }
	tests := []struct {
		text string
		want Packet
	}{
		// The examples of the protocol note.
		{`0`, Packet{Type: Connect, Namespace: "/"}},
		{`0/admin,{"token":"123"}`, Packet{Type: Connect, Namespace: "/admin", Data: []byte(`{"token":"123"}`)}},
		{`0{"sid":"x"}`, Packet{Type: Connect, Namespace: "/", Data: []byte(`{"sid":"x"}`)}},
		{`2["hello",1]`, Packet{Type: Event, Namespace: "/", Data: []byte(`["hello",1]`)}},
		{`2/admin,456["project:delete",123]`, Packet{Type: Event, Namespace: "/admin", ID: 456, HasID: true, Data: []byte(`["project:delete",123]`)}},
		{`3/admin,456[]`, Packet{Type: Ack, Namespace: "/admin", ID: 456, HasID: true, Data: []byte(`[]`)}},
		{`4{"message":"Not authorized"}`, Packet{Type: ConnectErrorPacket, Namespace: "/", Data: []byte(`{"message":"Not authorized"}`)}},
		{`51-["hello",` + ph("0") + `]`, Packet{Type: BinaryEvent, Namespace: "/", Attachments: 1, Data: []byte(`["hello",` + ph("0") + `]`)}},
		{`61-/admin,456[` + ph("0") + `]`, Packet{Type: BinaryAck, Namespace: "/admin", ID: 456, HasID: true, Attachments: 1, Data: []byte(`[` + ph("0") + `]`)}},
		// What the official protocol test suite sends and expects (without the Engine.IO '4').
		{`0/custom,`, Packet{Type: Connect, Namespace: "/custom"}},
		{`0/custom,{"token":"abc"}`, Packet{Type: Connect, Namespace: "/custom", Data: []byte(`{"token":"abc"}`)}},
		{`0/random`, Packet{Type: Connect, Namespace: "/random"}},
		{`4/random,{"message":"Invalid namespace"}`, Packet{Type: ConnectErrorPacket, Namespace: "/random", Data: []byte(`{"message":"Invalid namespace"}`)}},
		{`1`, Packet{Type: Disconnect, Namespace: "/"}},
		{`1/custom`, Packet{Type: Disconnect, Namespace: "/custom"}},
		{`2["auth",{}]`, Packet{Type: Event, Namespace: "/", Data: []byte(`["auth",{}]`)}},
		{`2["message",1,"2",{"3":[true]}]`, Packet{Type: Event, Namespace: "/", Data: []byte(`["message",1,"2",{"3":[true]}]`)}},
		{`52-["message",` + ph("0") + `,` + ph("1") + `]`, Packet{Type: BinaryEvent, Namespace: "/", Attachments: 2, Data: []byte(`["message",` + ph("0") + `,` + ph("1") + `]`)}},
		{`2456["message-with-ack",1,"2",{"3":[false]}]`, Packet{Type: Event, Namespace: "/", ID: 456, HasID: true, Data: []byte(`["message-with-ack",1,"2",{"3":[false]}]`)}},
		{`3456[1,"2",{"3":[false]}]`, Packet{Type: Ack, Namespace: "/", ID: 456, HasID: true, Data: []byte(`[1,"2",{"3":[false]}]`)}},
		{`62-789[` + ph("0") + `,` + ph("1") + `]`, Packet{Type: BinaryAck, Namespace: "/", ID: 789, HasID: true, Attachments: 2, Data: []byte(`[` + ph("0") + `,` + ph("1") + `]`)}},
		// Accepted by the official parser too.
		{`2[1,"a",{}]`, Packet{Type: Event, Namespace: "/", Data: []byte(`[1,"a",{}]`)}},
		{`4"Unauthorized"`, Packet{Type: ConnectErrorPacket, Namespace: "/", Data: []byte(`"Unauthorized"`)}},
		{`50-["a"]`, Packet{Type: BinaryEvent, Namespace: "/", Data: []byte(`["a"]`)}},
		{`2[ "a" ] `, Packet{Type: Event, Namespace: "/", Data: []byte(`[ "a" ] `)}},
		{`2007["a"]`, Packet{Type: Event, Namespace: "/", ID: 7, HasID: true, Data: []byte(`["a"]`)}},
		{`2["a",` + ph("3") + `]`, Packet{Type: Event, Namespace: "/", Data: []byte(`["a",` + ph("3") + `]`)}}, // not binary: an ordinary object
	}
	for _, tt := range tests {
		got, err := ParsePacket([]byte(tt.text), 0)
		if err != nil {
			t.Errorf("ParsePacket(%q): %v", tt.text, err)
			continue
		}
		if !equalPacket(got, tt.want) {
			t.Errorf("ParsePacket(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestParsePacketNamespaceRules(t *testing.T) {
	tests := []struct {
		text, nsp, data string
	}{
		{"0/admin", "/admin", ""},               // no ',': the rest is the namespace
		{`0/admin{"a":1}`, `/admin{"a":1}`, ""}, // even when it looks like data, as in the official parser
		{"0/,", "/", ""},
		{"0/", "/", ""},
		{`0/,{"a":1}`, "/", `{"a":1}`},
		{`2/a/b,["x"]`, "/a/b", `["x"]`},
		{`2/ spaces ok,["x"]`, "/ spaces ok", `["x"]`},
		{`51-/bin,1["x",{"_placeholder":true,"num":0}]`, "/bin", `["x",{"_placeholder":true,"num":0}]`},
	}
	for _, tt := range tests {
		p, err := ParsePacket([]byte(tt.text), 0)
		if err != nil {
			t.Errorf("ParsePacket(%q): %v", tt.text, err)
			continue
		}
		if p.Namespace != tt.nsp || string(p.Data) != tt.data {
			t.Errorf("ParsePacket(%q): namespace %q data %q, want %q %q", tt.text, p.Namespace, p.Data, tt.nsp, tt.data)
		}
	}
}

func TestParsePacketRejectsMalformedPackets(t *testing.T) {
	ph := func(n string) string { return `{"_placeholder":true,"num":` + n + `}` }
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	tests := []struct {
		name   string
		text   string
		reason string // substring of the error message
		offset int
	}{
		{"empty", "", "empty packet", 0},
		{"unknown type letter (the suite's 4abc)", "abc", "unknown packet type 'a'", 0},
		{"type 7", "7", "unknown packet type '7'", 0},
		{"type 9 with data", `9["a"]`, "unknown packet type '9'", 0},
		{"leading space", ` 2["a"]`, "unknown packet type ' '", 0},
		{"non-ASCII type", "é", "unknown packet type 0xc3", 0},

		{"binary without count", "5", "BINARY_EVENT without an attachment count", 1},
		{"binary with '-' but no count", `5-["a"]`, "BINARY_EVENT without an attachment count", 1},
		{"non-numeric count", `5a-["a"]`, "without an attachment count", 1},
		{"count not followed by '-'", `51["a",` + ph("0") + `]`, "not followed by '-'", 2},
		{"count at the end", `61`, "not followed by '-'", 2},
		{"too many attachments", `611-/x,1[` + ph("0") + `]`, "more than 10 attachments", 1},
		{"count overflowing int", `599999999999999999999999999-["a"]`, "more than 10 attachments", 1},

		{"namespace without '/' (data is not JSON)", `2admin,["a"]`, "payload is not valid JSON", 1},
		{"ack id not numeric (the suite's 42abc)", `2abc["message-with-ack",1]`, "payload is not valid JSON", 1},
		{"ack id overflowing 64 bits", `218446744073709551616["a"]`, "ack id overflows 64 bits", 1},
		{"ack id on CONNECT", `012{}`, "ack id on a CONNECT packet", 1},
		{"ack id on DISCONNECT", `1/a,5`, "ack id on a DISCONNECT packet", 4},
		{"ack id on CONNECT_ERROR", `41{"message":"x"}`, "ack id on a CONNECT_ERROR packet", 1},
		{"ACK without id", `3[]`, "ACK without an ack id", 1},
		{"BINARY_ACK without id", `61-[` + ph("0") + `]`, "BINARY_ACK without an ack id", 3},

		{"unterminated array", `2["some","data"`, "payload is not valid JSON", 14},
		{"unterminated string", `2/admin,"invalid`, "payload is not valid JSON", 15},
		{"trailing garbage", `2["a"]x`, "payload is not valid JSON", 6},
		{"leading space (an ack id 0 to the official parser)", `2 ["a"]`, "payload starts with whitespace", 1},
		{"space after the ack id", "21\t[\"a\"]", "payload starts with whitespace", 2},
		{"newline before an object", "0/a,\n{}", "payload starts with whitespace", 4},
		{"two values", `0{}{}`, "payload is not valid JSON", 3},
		{"too deep", "3" + "1" + deep, "payload is not valid JSON", 10002},

		{"CONNECT with a string", `0/admin,"invalid"`, "CONNECT payload is not an object", 8},
		{"CONNECT with an array", `0[]`, "CONNECT payload is not an object", 1},
		{"CONNECT with null", `0null`, "CONNECT payload is not an object", 1},
		{"DISCONNECT with a payload", `1/admin,{}`, "DISCONNECT with a payload", 8},
		{"EVENT without payload", `2`, "EVENT without a payload", 1},
		{"EVENT with id but no payload", `2/a,7`, "EVENT without a payload", 5},
		{"EVENT with an object", `2/admin,{}`, "EVENT payload is not an array", 8},
		{"EVENT with a string", `2"a"`, "EVENT payload is not an array", 1},
		{"EVENT with an empty array", `2[ ]`, "EVENT payload is an empty array", 1},
		{"event name an object", `2[{"toString":"foo"}]`, "event name is neither a string nor a number", 2},
		{"event name true", `2[true,"foo"]`, "event name is neither", 2},
		{"event name null", `2[null,"bar"]`, "event name is neither", 2},
		{"event name an array", `2[["a"]]`, "event name is neither", 2},
		{"reserved name connect", `2["connect"]`, `reserved event name "connect"`, 2},
		{"reserved name disconnect with args", `2["disconnect","123"]`, `reserved event name "disconnect"`, 2},
		{"reserved name escaped", `2["\u0063onnect_error"]`, `reserved event name`, 2},
		{"reserved name in binary event", `51-["newListener",` + ph("0") + `]`, `reserved event name`, 4},
		{"ACK with an object", `3/admin,1{}`, "ACK payload is not an array", 9},
		{"ACK without payload", `31`, "ACK without a payload", 2},
		{"CONNECT_ERROR with an array", `4[]`, "CONNECT_ERROR payload is neither an object nor a string", 1},
		{"CONNECT_ERROR with true", `4true`, "CONNECT_ERROR payload is neither", 1},
		{"CONNECT_ERROR without payload", `4/a,`, "CONNECT_ERROR without a payload", 4},

		{"placeholder num a string", `51-["hello",` + ph(`"splice"`) + `]`, `placeholder "num" is not an integer from 0 to 0`, 12},
		{"placeholder num out of range", `51-["hello",` + ph("1") + `]`, `placeholder "num"`, 12},
		{"placeholder num negative", `52-["hello",` + ph("-1") + `]`, `placeholder "num"`, 12},
		{"placeholder num fractional", `52-["hello",` + ph("0.5") + `]`, `placeholder "num"`, 12},
		{"placeholder num huge", `52-["hello",` + ph("1e300") + `]`, `placeholder "num"`, 12},
		{"placeholder num null", `52-["hello",` + ph("null") + `]`, `placeholder "num"`, 12},
		{"placeholder without num", `51-["hello",{"_placeholder":true}]`, `placeholder "num"`, 12},
		{"placeholder with no attachment announced", `50-["hello",` + ph("0") + `]`, `placeholder in a packet that announces no attachment`, 12},
		{"bad placeholder nested deep", `61-1[{"a":[1,{"b":` + ph("1") + `}]}]`, `placeholder "num"`, 18},
		{"bad placeholder after a good one", `52-["a",` + ph("0") + `,` + ph("2") + `]`, `placeholder "num"`, 38},
		{"placeholder key escaped", `51-["a",{"\u005fplaceholder":true,"num":4}]`, `placeholder "num"`, 8},
		{"duplicate num: the last counts", `51-["a",{"_placeholder":true,"num":0,"num":1}]`, `placeholder "num"`, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket([]byte(tt.text), 0)
			if err == nil {
				t.Fatalf("ParsePacket(%q) = %+v, want an error", tt.text, p)
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error %v does not match ErrInvalidPacket", err)
			}
			var pe *PacketError
			if !errors.As(err, &pe) {
				t.Fatalf("error %#v is not a *PacketError", err)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "socketio: invalid packet at byte ") {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if pe.Offset != tt.offset {
				t.Errorf("error %q at offset %d, want %d", err, pe.Offset, tt.offset)
			}
			if !equalPacket(p, Packet{}) {
				t.Errorf("ParsePacket returned %+v with its error", p)
			}
		})
	}
}

func TestParsePacketErrorsCarryTheirCause(t *testing.T) {
	_, err := ParsePacket([]byte(`2["a"`), 0)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Errorf("error %v does not carry a *json.SyntaxError", err)
	}
	_, err = ParsePacket([]byte(`511-["a"]`), 0)
	if !errors.Is(err, ErrAttachmentLimit) || !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("error %v does not match ErrAttachmentLimit and ErrInvalidPacket", err)
	}
	if strings.Contains(err.Error(), ErrAttachmentLimit.Error()) {
		t.Errorf("error %q repeats its sentinel", err)
	}
	_, err = ParsePacket([]byte(`2["connect"]`), 0)
	if errors.Is(err, ErrAttachmentLimit) {
		t.Errorf("error %v matches ErrAttachmentLimit", err)
	}
}

func TestParsePacketAttachmentLimit(t *testing.T) {
	ph := `{"_placeholder":true,"num":0}`
	tests := []struct {
		text  string
		limit int
		ok    bool
	}{
		{`510-["a",` + ph + `]`, 0, true}, // 0: the default, 10
		{`511-["a",` + ph + `]`, 0, false},
		{`511-["a",` + ph + `]`, -5, false},
		{`53-["a",` + ph + `]`, 2, false},
		{`52-["a",` + ph + `]`, 2, true},
		{`5000000000002-["a",` + ph + `]`, 2, true}, // leading zeros, as the official parser reads them
		{`59223372036854775807-["a",` + ph + `]`, math.MaxInt, true},
		{`59223372036854775808-["a",` + ph + `]`, math.MaxInt, false},
	}
	for _, tt := range tests {
		p, err := ParsePacket([]byte(tt.text), tt.limit)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePacket(%q, %d) = %+v, %v; want ok %v", tt.text, tt.limit, p, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrAttachmentLimit) {
			t.Errorf("ParsePacket(%q, %d): %v does not match ErrAttachmentLimit", tt.text, tt.limit, err)
		}
	}
}

func TestParsePacketFindsPlaceholdersAsTheOfficialParserDoes(t *testing.T) {
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"integer-valued forms of num", `["a",{"_placeholder":true,"num":1.0},{"_placeholder":true,"num":1e0},{"_placeholder":true,"num":-0}]`, true},
		{"_placeholder false is an ordinary object", `["a",{"_placeholder":false,"num":99}]`, true},
		{"_placeholder \"true\" is an ordinary object", `["a",{"_placeholder":"true","num":99}]`, true},
		{"_placeholder 1 is an ordinary object", `["a",{"_placeholder":1,"num":99}]`, true},
		{"last _placeholder wins (false)", `["a",{"_placeholder":true,"_placeholder":false,"num":99}]`, true},
		{"last _placeholder wins (true)", `["a",{"_placeholder":false,"_placeholder":true,"num":99}]`, false},
		{"num without _placeholder is ordinary", `["a",{"num":99}]`, true},
		{"extra members are allowed", `["a",{"num":1,"x":[1,2],"_placeholder":true}]`, true},
		{"members of a placeholder are not searched", `["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":99}}]`, true},
		{"whitespace everywhere", "[ \"a\" , { \"_placeholder\" : true , \"num\" : 1 } ] ", true},
		{"an escaped num key counts", `["a",{"_placeholder":true,"n\u0075m":1}]`, true},
		{"a key that only starts like num is ordinary", `["a",{"_placeholder":true,"numb":1}]`, false},
		{"placeholder strings in values are not keys", `["_placeholder",{"x":"_placeholder","num":true}]`, true},
	}
	for _, tt := range tests {
		text := `52-` + tt.data
		_, err := ParsePacket([]byte(text), 0)
		if (err == nil) != tt.ok {
			t.Errorf("%s: ParsePacket(%q) error %v, want ok %v", tt.name, text, err, tt.ok)
		}
	}
}

func TestParsePacketHandlesDeepNesting(t *testing.T) {
	for _, typ := range []string{"3", "61-"} {
		ok := typ + "1" + strings.Repeat(`[{"a":`, maxDepth/2-1) + "[]" + strings.Repeat("}]", maxDepth/2-1)
		if _, err := ParsePacket([]byte(ok), 0); err != nil {
			t.Errorf("%d levels: %v", maxDepth, err)
		}
		bad := typ + "1" + strings.Repeat(`[{"a":`, maxDepth) + "0" + strings.Repeat("}]", maxDepth)
		if _, err := ParsePacket([]byte(bad), 0); err == nil {
			t.Errorf("%d levels: no error", 2*maxDepth)
		}
	}
}

func TestParsePacketAliasesItsInput(t *testing.T) {
	text := []byte(`2/chat,1["a"]`)
	p, err := ParsePacket(text, 0)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Data[0] != &text[8] {
		t.Error("Data does not alias the text")
	}
	text[1] = 'X'
	if p.Namespace != "/chat" {
		t.Error("Namespace changed with the text")
	}
}

func TestValidateChecksTheFields(t *testing.T) {
	tests := []struct {
		name   string
		p      Packet
		reason string // "" for a valid packet
	}{
		{"valid event", Packet{Type: Event, Namespace: "/a", Data: []byte(`["x"]`)}, ""},
		{"empty namespace is the main one", Packet{Type: Connect}, ""},
		{"unknown type", Packet{Type: 9}, "unknown packet type 9"},
		{"namespace without '/'", Packet{Type: Connect, Namespace: "admin"}, "namespace does not start with '/'"},
		{"namespace with ','", Packet{Type: Connect, Namespace: "/a,b"}, "namespace contains ','"},
		{"attachments on an event", Packet{Type: Event, Attachments: 1, Data: []byte(`["x"]`)}, "attachment count on a EVENT packet"},
		{"negative attachments", Packet{Type: BinaryEvent, Attachments: -1, Data: []byte(`["x"]`)}, "negative attachment count"},
		{"placeholder past the count", Packet{Type: BinaryEvent, Attachments: 1, Data: []byte(`["x",{"_placeholder":true,"num":1}]`)}, `placeholder "num"`},
		{"many attachments are not limited", Packet{Type: BinaryEvent, Attachments: 1000, Data: []byte(`["x"]`)}, ""},
		{"data checked", Packet{Type: Disconnect, Data: []byte(`{}`)}, "DISCONNECT with a payload"},
		{"id checked", Packet{Type: Ack, Data: []byte(`[]`)}, "ACK without an ack id"},
		{"reserved name", Packet{Type: Event, Data: []byte(`["disconnecting"]`)}, "reserved event name"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if tt.reason == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v", tt.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: Validate() = %v, want an error saying %q", tt.name, err, tt.reason)
		}
	}
}

func TestValidateOffsetsReferToTheEncoding(t *testing.T) {
	p := Packet{Type: BinaryEvent, Namespace: "/ns", ID: 42, HasID: true, Attachments: 12, Data: []byte(`{}`)}
	text := AppendPacket(nil, &p)
	want, err := ParsePacket(text, math.MaxInt)
	var pv, pp *PacketError
	if !errors.As(p.Validate(), &pv) || !errors.As(err, &pp) {
		t.Fatalf("Validate() and ParsePacket(%q) = %v, %v; want errors", text, p.Validate(), err)
	}
	if pv.Offset != pp.Offset || pv.Reason != pp.Reason {
		t.Errorf("Validate error %+v, ParsePacket error %+v", pv, pp)
	}
	_ = want
}

func TestIsReservedEvent(t *testing.T) {
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		if !IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = false", name)
		}
	}
	for _, name := range []string{"", "Connect", "connected", "message", "error", "ping"} {
		if IsReservedEvent(name) {
			t.Errorf("IsReservedEvent(%q) = true", name)
		}
	}
}

func TestPacketErrorMessage(t *testing.T) {
	tests := []struct {
		err  *PacketError
		want string
	}{
		{&PacketError{Offset: 2, Reason: "EVENT payload is not an array"}, "socketio: invalid packet at byte 2: EVENT payload is not an array"},
		{&PacketError{Offset: -1, Reason: "binary message when no attachment is awaited"}, "socketio: invalid packet: binary message when no attachment is awaited"},
		{&PacketError{Offset: 0, Reason: "x", Err: errors.New("cause")}, "socketio: invalid packet at byte 0: x: cause"},
		{&PacketError{Offset: 1, Reason: "more than 10 attachments", Err: ErrAttachmentLimit}, "socketio: invalid packet at byte 1: more than 10 attachments"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
