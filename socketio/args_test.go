package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// decode parses a packet and its attachments with a Decoder.
func decode(t *testing.T, packet string, attachments ...[]byte) *Message {
	t.Helper()
	var d Decoder
	m, err := d.Add([]byte(packet), false)
	for _, a := range attachments {
		if err != nil {
			break
		}
		m, err = d.Add(a, true)
	}
	if err != nil || m == nil {
		t.Fatalf("decoding %q: %v, %v", packet, m, err)
	}
	return m
}

// encode builds the packet for an event (name != "") or an ack (name == "") with
// AppendArgs and decodes it back with a Decoder.
func encode(t *testing.T, name string, args ...any) *Message {
	t.Helper()
	data, atts, err := AppendArgs(nil, name, args)
	if err != nil {
		t.Fatalf("AppendArgs(%q, %#v): %v", name, args, err)
	}
	p := Packet{Type: Event, Data: data}
	if name == "" {
		p = Packet{Type: Ack, ID: 1, HasID: true, Data: data}
	}
	if len(atts) > 0 {
		p.Type += BinaryEvent - Event
		p.Attachments = len(atts)
	}
	return decode(t, string(AppendPacket(nil, &p)), atts...)
}

func TestEventArgsSplitsNameAndArguments(t *testing.T) {
	m := decode(t, `2/chat,12[ "message" , 1, "two", {"3":[true]} , null ]`)
	name, args, err := EventArgs(m)
	if err != nil || name != "message" || args.Len() != 4 {
		t.Fatalf("EventArgs = %q, %d args, %v", name, args.Len(), err)
	}
	for i, want := range []string{`1`, `"two"`, `{"3":[true]}`, `null`} {
		if got := string(args.Raw(i)); got != want {
			t.Errorf("Raw(%d) = %q, want %q", i, got, want)
		}
	}
	if args.Raw(4) != nil || args.Raw(-1) != nil {
		t.Error("Raw out of range is not nil")
	}
	var s string
	if err := args.Decode(1, &s); err != nil || s != "two" {
		t.Errorf("Decode(1) = %q, %v", s, err)
	}
}

func TestEventArgsDecodesEveryFormOfName(t *testing.T) {
	tests := []struct{ packet, name string }{
		{`2["héllo 世界"]`, "héllo 世界"},
		{`2["h\u00e9llo\n\"x\""]`, "h\u00e9llo\n\"x\""},
		{`2[""]`, ""},
		{`2["\ud83c\udf89"]`, "🎉"},
		// Numbers, as JavaScript's String(n) writes them.
		{`2[1,"a",{}]`, "1"},
		{`2[1.50]`, "1.5"},
		{`2[-0]`, "0"},
		{`2[1e21]`, "1e+21"},
		{`2[0.0000001]`, "1e-7"},
		{`2[123456789012]`, "123456789012"},
		{`2[1e400]`, "Infinity"},
		{`2[-1e400]`, "-Infinity"},
		{`2[1e-400]`, "0"},
	}
	for _, tt := range tests {
		name, _, err := EventArgs(decode(t, tt.packet))
		if err != nil || name != tt.name {
			t.Errorf("EventArgs(%s) = %q, %v; want %q", tt.packet, name, err, tt.name)
		}
	}
}

func TestEventArgsAndAckArgsCheckTheType(t *testing.T) {
	ack := decode(t, `3/x,5[1,2]`)
	if _, _, err := EventArgs(ack); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("EventArgs of an ACK: %v", err)
	}
	args, err := AckArgs(ack)
	if err != nil || args.Len() != 2 {
		t.Errorf("AckArgs = %d args, %v", args.Len(), err)
	}
	if _, err := AckArgs(decode(t, `2["a"]`)); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("AckArgs of an EVENT: %v", err)
	}
	if args, err := AckArgs(decode(t, `3/x,5[]`)); err != nil || args.Len() != 0 {
		t.Errorf("empty ACK: %d args, %v", args.Len(), err)
	}
	// A message built by hand is checked as far as splitting needs.
	for _, data := range []string{``, `{}`, `[`, `[1,`, `["a"`, `["a" "b"]`, `[]`} {
		m := &Message{Packet: Packet{Type: Event, Data: []byte(data)}}
		if _, _, err := EventArgs(m); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("EventArgs of %q: %v", data, err)
		}
	}
}

func TestAppendArgsReplacesBinaryDepthFirst(t *testing.T) {
	b := func(s string) []byte { return []byte(s) }
	args := []any{
		b("zero"),
		map[string]any{
			"b": b("two"),
			"a": []any{"x", b("one")}, // "a" sorts before "b"
			"c": nil,
		},
		[]any{[]any{b("three")}, 4},
		"five",
		[]byte(nil), // every []byte counts, even nil
	}
	data, atts, err := AppendArgs([]byte("prefix"), "upload", args)
	if err != nil {
		t.Fatal(err)
	}
	ph := func(n string) string { return `{"_placeholder":true,"num":` + n + `}` }
	want := `prefix["upload",` + ph("0") + `,{"a":["x",` + ph("1") + `],"b":` + ph("2") + `,"c":null},[[` + ph("3") + `],4],"five",` + ph("4") + `]`
	if string(data) != want {
		t.Errorf("AppendArgs =\n%s\nwant\n%s", data, want)
	}
	if len(atts) != 5 {
		t.Fatalf("%d attachments, want 5", len(atts))
	}
	for i, w := range []string{"zero", "one", "two", "three", ""} {
		if string(atts[i]) != w {
			t.Errorf("attachment %d = %q, want %q", i, atts[i], w)
		}
	}
	if &atts[0][0] != &args[0].([]byte)[0] {
		t.Error("attachment 0 is a copy, not the argument itself")
	}
}

func TestArgsResolveNestedBinary(t *testing.T) {
	file := []byte{0, 1, 2, 0xff}
	thumb := []byte("thumbnail")
	m := encode(t, "upload", "a.png", map[string]any{"data": file, "meta": map[string]any{"thumbs": []any{thumb}}}, file)
	if m.Type != BinaryEvent || m.Attachments != 3 {
		t.Fatalf("got %+v", m.Packet)
	}
	name, args, err := EventArgs(m)
	if err != nil || name != "upload" || args.Len() != 3 {
		t.Fatal(name, args.Len(), err)
	}

	t.Run("into a typed struct with []byte fields", func(t *testing.T) {
		var v struct {
			Data []byte `json:"data"`
			Meta struct {
				Thumbs [][]byte `json:"thumbs"`
			} `json:"meta"`
		}
		if err := args.Decode(1, &v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.Data, file) || len(v.Meta.Thumbs) != 1 || !bytes.Equal(v.Meta.Thumbs[0], thumb) {
			t.Errorf("got %+v", v)
		}
	})
	t.Run("into a []byte", func(t *testing.T) {
		var v []byte
		if err := args.Decode(2, &v); err != nil || !bytes.Equal(v, file) {
			t.Errorf("got %v, %v", v, err)
		}
	})
	t.Run("into any", func(t *testing.T) {
		var v any
		if err := args.Decode(1, &v); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"data": file, "meta": map[string]any{"thumbs": []any{thumb}}}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("got %#v", v)
		}
		if &v.(map[string]any)["data"].([]byte)[0] != &m.Binary[0][0] {
			t.Error("the []byte is a copy, not the attachment")
		}
	})
	t.Run("into map[string]any", func(t *testing.T) {
		var v map[string]any
		if err := args.Decode(1, &v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v["data"].([]byte), file) {
			t.Errorf("got %#v", v)
		}
	})
	t.Run("into []any", func(t *testing.T) {
		m := encode(t, "", []any{file, "x", []any{thumb}})
		args, err := AckArgs(m)
		if err != nil {
			t.Fatal(err)
		}
		var v []any
		if err := args.Decode(0, &v); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v, []any{file, "x", []any{thumb}}) {
			t.Errorf("got %#v", v)
		}
	})
	t.Run("a binary argument into map[string]any", func(t *testing.T) {
		var v map[string]any
		if err := args.Decode(2, &v); err == nil {
			t.Errorf("got %#v and no error", v)
		}
	})
	t.Run("an interface field inside a struct gets base64", func(t *testing.T) {
		var v struct {
			Data any `json:"data"`
		}
		if err := args.Decode(1, &v); err != nil || v.Data != "AAEC/w==" {
			t.Errorf("got %#v, %v", v, err)
		}
	})
	t.Run("Values", func(t *testing.T) {
		vals, err := args.Values()
		if err != nil {
			t.Fatal(err)
		}
		want := []any{"a.png", map[string]any{"data": file, "meta": map[string]any{"thumbs": []any{thumb}}}, file}
		if !reflect.DeepEqual(vals, want) {
			t.Errorf("Values = %#v", vals)
		}
	})
	t.Run("Binary", func(t *testing.T) {
		if b, ok := args.Binary(2); !ok || &b[0] != &m.Binary[2][0] {
			t.Errorf("Binary(2) = %v, %v", b, ok)
		}
		for _, i := range []int{0, 1, 3, -1} { // a string, a nested binary, out of range
			if b, ok := args.Binary(i); ok {
				t.Errorf("Binary(%d) = %v, true", i, b)
			}
		}
	})
}

func TestArgsUsePlaceholdersFromTheWire(t *testing.T) {
	// Attachment numbers need not follow the order of the placeholders.
	ph := func(n string) string { return `{"_placeholder":true,"num":` + n + `}` }
	m := decode(t, `62-1[`+ph("1")+`,{"x":`+ph("0")+`,"y":`+ph("1")+`}]`, []byte("zero"), []byte("one"))
	args, err := AckArgs(m)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := args.Values()
	if err != nil {
		t.Fatal(err)
	}
	want := []any{[]byte("one"), map[string]any{"x": []byte("zero"), "y": []byte("one")}}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("Values = %#v", vals)
	}
	var s struct{ X, Y []byte }
	if err := args.Decode(1, &s); err != nil || string(s.X) != "zero" || string(s.Y) != "one" {
		t.Errorf("Decode = %+v, %v", s, err)
	}
	if b, ok := args.Binary(0); !ok || string(b) != "one" {
		t.Errorf("Binary(0) = %q, %v", b, ok)
	}
}

func TestArgsLeavePlaceholdersOfTextPacketsAlone(t *testing.T) {
	m := decode(t, `2["a",{"_placeholder":true,"num":0}]`)
	_, args, err := EventArgs(m)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := args.Values()
	if err != nil || !reflect.DeepEqual(vals, []any{map[string]any{"_placeholder": true, "num": 0.0}}) {
		t.Errorf("Values = %#v, %v", vals, err)
	}
	if _, ok := args.Binary(0); ok {
		t.Error("Binary(0) found an attachment in a text packet")
	}
}

func TestArgsDecodeOfAMissingArgument(t *testing.T) {
	_, args, err := EventArgs(decode(t, `2["a",1]`))
	if err != nil {
		t.Fatal(err)
	}
	v := 7
	for _, i := range []int{1, 5, -1} {
		if err := args.Decode(i, &v); err == nil || v != 7 {
			t.Errorf("Decode(%d) = %v, v = %d", i, err, v)
		}
	}
	if err := args.Decode(0, &v); err != nil || v != 1 {
		t.Errorf("Decode(0) = %v, v = %d", err, v)
	}
	var s string
	if err := args.Decode(0, &s); err == nil {
		t.Error("decoding a number into a string: no error")
	}
}

func TestArgsOfAHandMadeMessageWithBadPlaceholders(t *testing.T) {
	m := &Message{Packet: Packet{Type: BinaryAck, HasID: true, Attachments: 1, Data: []byte(`[{"_placeholder":true,"num":3},{"x":{"_placeholder":true,"num":"a"}}]`)}, Binary: [][]byte{{1}}}
	args, err := AckArgs(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	var b []byte
	var s struct{ X []byte }
	for _, dst := range []any{&v, &b} {
		if err := args.Decode(0, dst); !errors.Is(err, ErrInvalidPacket) {
			t.Errorf("Decode(0) into %T: %v", dst, err)
		}
	}
	if err := args.Decode(1, &s); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Decode(1): %v", err)
	}
	if _, err := args.Values(); err == nil {
		t.Error("Values: no error")
	}
	if _, ok := args.Binary(0); ok {
		t.Error("Binary(0) of a bad placeholder")
	}
}

func TestAppendArgsWritesPlainValues(t *testing.T) {
	type point struct {
		X, Y int
		B    []byte
	}
	tests := []struct {
		arg  any
		want string
	}{
		{nil, `null`},
		{true, `true`},
		{"héllo \"q\" \\ \n\r\t\b\f\x00\x1f <&> \u2028 🎉", `"héllo \"q\" \\ \n\r\t\b\f\u0000\u001f <&> ` + "\u2028" + ` 🎉"`},
		{"bad \xff utf-8 \xe2\x82", `"bad \ufffd utf-8 \ufffd\ufffd"`},
		{int(-3), `-3`},
		{int8(-8), `-8`},
		{int16(16), `16`},
		{int32(32), `32`},
		{int64(math.MinInt64), `-9223372036854775808`},
		{uint(3), `3`},
		{uint8(255), `255`},
		{uint16(16), `16`},
		{uint32(32), `32`},
		{uint64(math.MaxUint64), `18446744073709551615`},
		{1.5, `1.5`},
		{0.1, `0.1`},
		{float32(0.1), `0.1`},
		{1e21, `1e+21`},
		{1e20, `100000000000000000000`},
		{1e-7, `1e-7`},
		{-1e-7, `-1e-7`},
		{1e-6, `0.000001`},
		{math.Copysign(0, -1), `0`},
		{json.RawMessage(` {"raw": [1]} `), ` {"raw": [1]} `},
		{json.RawMessage(nil), `null`},
		{[]any(nil), `null`},
		{map[string]any(nil), `null`},
		{[]any{}, `[]`},
		{map[string]any{}, `{}`},
		{map[string]any{"z": 1, "a\"": []any{true}}, `{"a\"":[true],"z":1}`},
		{point{1, 2, []byte{1}}, `{"X":1,"Y":2,"B":"AQ=="}`}, // through json.Marshal: base64, no attachment
		{[]int{1, 2}, `[1,2]`},
		{map[string]int{"a": 1}, `{"a":1}`},
	}
	for _, tt := range tests {
		data, atts, err := AppendArgs(nil, "", []any{tt.arg})
		if err != nil || string(data) != "["+tt.want+"]" || len(atts) != 0 {
			t.Errorf("AppendArgs(%#v) = %s, %d attachments, %v; want [%s]", tt.arg, data, len(atts), err, tt.want)
			continue
		}
		// encoding/json reads back the same value it would write itself.
		var got, want any
		m, _ := json.Marshal([]any{tt.arg})
		if err := json.Unmarshal(data, &got); err != nil {
			t.Errorf("AppendArgs(%#v) wrote invalid JSON %s: %v", tt.arg, data, err)
		}
		_ = json.Unmarshal(m, &want)
		if s, ok := tt.arg.(string); !ok || strings.ToValidUTF8(s, "\ufffd") == s {
			if !reflect.DeepEqual(got, want) {
				t.Errorf("AppendArgs(%#v) reads back as %#v, json.Marshal as %#v", tt.arg, got, want)
			}
		}
	}
}

func TestAppendArgsHead(t *testing.T) {
	tests := []struct {
		head string
		args []any
		want string
	}{
		{"", nil, `[]`},
		{"ev", nil, `["ev"]`},
		{"ev", []any{1}, `["ev",1]`},
		{"", []any{1, "a"}, `[1,"a"]`},
		{"", []any{""}, `[""]`}, // an event named "" goes in args
		{"a\"b", []any{nil}, `["a\"b",null]`},
	}
	for _, tt := range tests {
		data, _, err := AppendArgs(nil, tt.head, tt.args)
		if err != nil || string(data) != tt.want {
			t.Errorf("AppendArgs(%q, %v) = %s, %v; want %s", tt.head, tt.args, data, err, tt.want)
		}
	}
}

func TestAppendArgsErrorsLeaveDstAlone(t *testing.T) {
	loop := []any{1}
	loop[0] = loop
	loopMap := map[string]any{}
	loopMap["self"] = loopMap
	tests := []struct {
		name string
		arg  any
		want string
	}{
		{"NaN", math.NaN(), "unsupported value"},
		{"infinity", float32(math.Inf(1)), "unsupported value"},
		{"invalid RawMessage", json.RawMessage(`{"a":`), "not valid JSON"},
		{"a slice that contains itself", loop, "nested more than 10000 deep"},
		{"a map that contains itself", loopMap, "nested more than 10000 deep"},
		{"a channel", make(chan int), "unsupported type"},
		{"an error deep inside", []any{[]byte("x"), map[string]any{"a": math.Inf(-1)}}, "unsupported value"},
	}
	for _, tt := range tests {
		dst := make([]byte, 3, 64)
		copy(dst, "abc")
		out, atts, err := AppendArgs(dst, "ev", []any{"ok", tt.arg})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.want)
		}
		if string(out) != "abc" || atts != nil {
			t.Errorf("%s: returned %q and %d attachments", tt.name, out, len(atts))
		}
	}
}

func TestArgsRoundTripThroughThePacket(t *testing.T) {
	args := []any{
		"text", 42.0, true, nil,
		[]byte{1, 2, 3},
		map[string]any{"nested": []any{[]byte("deep"), map[string]any{"k": []byte{}}}, "n": -1.5},
		[]any{},
	}
	for _, name := range []string{"ev", ""} {
		m := encode(t, name, args...)
		var a Args
		var err error
		if name != "" {
			var got string
			got, a, err = EventArgs(m)
			if got != name {
				t.Errorf("name %q, want %q", got, name)
			}
		} else {
			a, err = AckArgs(m)
		}
		if err != nil {
			t.Fatal(err)
		}
		vals, err := a.Values()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(vals, args) {
			t.Errorf("round trip of %#v gave %#v", args, vals)
		}
	}
}
