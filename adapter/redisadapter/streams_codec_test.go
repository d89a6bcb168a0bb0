package redisadapter

import (
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/duplexio/duplex/socketio"
)

// The bytes below are what @socket.io/redis-streams-adapter 0.3.1 writes (with
// @msgpack/msgpack 2.8 and JSON.stringify) for the same messages; the Go adapter writes
// the same bytes, so a stream or a session key written by either reads the same.

func TestStreamsEntryDataIsNodes(t *testing.T) {
	p, err := encodeValues("/", 0, false, []any{"ev", "<&>", map[string]any{"a": 1}, nil, 2.5})
	if err != nil {
		t.Fatal(err)
	}
	values, _, err := packetValues(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := streamsEncodeData(object{
		{"packet", eventPacket(values)},
		{"opts", encodeStreamsOpts(socketio.BroadcastOptions{NoCompress: true})},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	const node = `{"packet":{"type":2,"data":["ev","<&>",{"a":1},null,2.5]},"opts":{"rooms":[],"except":[],"flags":{"compress":false}}}`
	if got != node {
		t.Fatalf("JSON entry data\n got %s\nwant %s", got, node)
	}

	// With binary values: msgpack in base64.
	p, err = encodeValues("/", 0, false, []any{"b", []byte{1, 2}, 1.5, -3, 300, map[string]any{"k": "<&>"}})
	if err != nil {
		t.Fatal(err)
	}
	if values, _, err = packetValues(p); err != nil {
		t.Fatal(err)
	}
	got, err = streamsEncodeData(object{
		{"packet", eventPacket(values)},
		{"opts", encodeStreamsOpts(socketio.BroadcastOptions{Rooms: []socketio.Room{"r"}, Except: []socketio.Room{"x"}, Volatile: true})},
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	const nodeBin = "gqZwYWNrZXSCpHR5cGUCpGRhdGGWoWLEAgECyz/4AAAAAAAA/c0BLIGha6M8Jj6kb3B0c4Olcm9vbXORoXKmZXhjZXB0kaF4pWZsYWdzgah2b2xhdGlsZcM="
	if got != nodeBin {
		g, _ := base64.StdEncoding.DecodeString(got)
		w, _ := base64.StdEncoding.DecodeString(nodeBin)
		t.Fatalf("binary entry data\n got %x\nwant %x", g, w)
	}
	// And it reads back.
	m, err := streamsDecodeEntry(map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": got})
	if err != nil || m.Type != streamsBroadcast {
		t.Fatalf("decode: %+v %v", m, err)
	}
}

func TestStreamsSessionAndPubSubBytesAreNodes(t *testing.T) {
	b, err := streamsMsgpack(object{{"sid", "s1"}, {"pid", "p1"}, {"rooms", roomStrings([]socketio.Room{"s1", "news"})}, {"data", map[string]any{"n": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, node := base64.StdEncoding.EncodeToString(b), "hKNzaWSiczGjcGlkonAxpXJvb21zkqJzMaRuZXdzpGRhdGGBoW4B"; got != node {
		t.Fatalf("session %s, want %s", got, node)
	}
	s, err := decodeSession("hKNzaWSiczGjcGlkonAxpXJvb21zkqJzMaRuZXdzpGRhdGGBoW4B")
	if err != nil || s.SID != "s1" || s.PID != "p1" || len(s.Rooms) != 2 || s.Rooms[1] != "news" {
		t.Fatalf("session %+v %v", s, err)
	}

	b, err = streamsEncodePubSub("u1", "/", streamsServerSideEmit, object{{"requestId", "abc"}, {"packet", []any{"q", "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got, node := hex.EncodeToString(b), "84a47479706509a46461746182a9726571756573744964a3616263a67061636b657492a171a178a3756964a27531a36e7370a12f"; got != node {
		t.Fatalf("pub/sub message\n got %s\nwant %s", got, node)
	}
}
