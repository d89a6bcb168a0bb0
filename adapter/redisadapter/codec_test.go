package redisadapter

import (
	"encoding/hex"
	"reflect"
	"testing"

	"github.com/duplexio/duplex/socketio"
)

// notepackBroadcast is what notepack.io 3.0.1 (the Node adapter's msgpack) writes for
// ["abc123", {type: 2, data: ["ev", Buffer[1,2], 1.5, -3, 300, null, {k: [true, "s"]},
// 4294967296], nsp: "/"}, {rooms: ["r", 1], except: [], flags: {volatile: true,
// compress: false}}].
const notepackBroadcast = "93a661626331323383a47479706502a46461746198a26576c4020102cb3ff8000000000000fdcd012cc081a16b92c3a173cf0000000100000000a36e7370a12f83a5726f6f6d7392a17201a665786365707490a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2"

func TestDecodeNotepackBroadcast(t *testing.T) {
	b, _ := hex.DecodeString(notepackBroadcast)
	v, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	arr := v.([]any)
	if arr[0] != "abc123" {
		t.Fatalf("uid %v", arr[0])
	}
	nsp, event, args, err := eventOf(arr[1])
	if err != nil || nsp != "/" || event != "ev" {
		t.Fatalf("eventOf: %q %q %v", nsp, event, err)
	}
	want := []any{[]byte{1, 2}, 1.5, int64(-3), uint64(300), nil, map[string]any{"k": []any{true, "s"}}, uint64(4294967296)}
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("args %#v, want %#v", args, want)
	}
	opts := decodeOpts(arr[2])
	if !reflect.DeepEqual(opts, socketio.BroadcastOptions{Rooms: []socketio.Room{"r", "1"}, Volatile: true, NoCompress: true}) {
		t.Fatalf("opts %+v", opts)
	}
	// the arguments encode for the local sockets as the Node server would send them
	data, att, err := socketio.AppendArgs(nil, event, args)
	if err != nil || string(data) != `["ev",{"_placeholder":true,"num":0},1.5,-3,300,null,{"k":[true,"s"]},4294967296]` || len(att) != 1 {
		t.Fatalf("AppendArgs: %s %v %v", data, att, err)
	}
}

func TestEncodeLikeNotepack(t *testing.T) {
	// notepack.io writes {type: 9, requestId: "xyz", packet: Buffer[255]} as this (keys in
	// insertion order; ours are sorted, which readers do not care about).
	b, err := encodeMsgpack(map[string]any{"type": reqBroadcastAck, "requestId": "xyz", "packet": []byte{255}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, map[string]any{"type": int64(9), "requestId": "xyz", "packet": []byte{255}}) {
		t.Fatalf("%#v", v)
	}
	// integral float64 values (from JSON) are written as integers, as JavaScript numbers are
	b, _ = encodeMsgpack([]any{3.0, 2.5, -1.0})
	if got := hex.EncodeToString(b); got != "9303cb4004000000000000ff" {
		t.Fatalf("numbers: %s", got)
	}
}

func TestDecodeJSONRequest(t *testing.T) {
	v, err := decodeMessage([]byte(`{"uid":"u","type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b",3]}`))
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if typ, _ := intOf(m, "type"); typ != reqRemoteJoin || str(m, "uid") != "u" {
		t.Fatalf("%v", m)
	}
	if got := roomsOf(m["rooms"]); !reflect.DeepEqual(got, []socketio.Room{"b", "3"}) {
		t.Fatalf("rooms %v", got)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, b := range []string{"", "c1", "93a1", "{", "92a16100ff"} {
		raw, _ := hex.DecodeString(b)
		if b == "{" {
			raw = []byte(b)
		}
		if _, err := decodeMessage(raw); err == nil {
			t.Errorf("%q decoded", b)
		}
	}
}

func TestEventValuesDropsRecoveryOffset(t *testing.T) {
	data, att, _ := socketio.AppendArgs(nil, "ev", []any{1, []byte{5}, "off-1"})
	text := append([]byte("51-"), data...)
	ev, args, err := eventValues(&socketio.EncodedPacket{Text: text, Attachments: att, Offset: "off-1"})
	if err != nil || ev != "ev" || !reflect.DeepEqual(args, []any{1.0, []byte{5}}) {
		t.Fatalf("%q %#v %v", ev, args, err)
	}
}
