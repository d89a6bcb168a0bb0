package redisadapter

import (
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/duplexio/duplex/socketio"
)

// Connection-state recovery across servers, as the Node streams adapter does it: a session
// is the msgpack map {sid, pid, rooms, data}, base64-encoded, under SessionKeyPrefix+pid
// (SET ... PX MaxDisconnectionDuration); the offset a client presents is the id of the last
// stream entry it got; restoring reads and deletes the session (MULTI GET DEL), checks that
// the offset is still in the stream (XRANGE offset offset), then reads the entries after it
// (XRANGE, at most 100 calls) and keeps the broadcasts of the namespace that reach the
// session's rooms, each with its entry id as offset.

var streamsOffsetRe = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// PersistSession implements socketio.Adapter: the session is stored in Redis for the
// recovery window, where any server of the cluster can restore it.
func (a *StreamsAdapter) PersistSession(s socketio.PersistedSession) {
	ttl := socketio.DefaultMaxDisconnectionDuration
	if a.recovery != nil {
		ttl = a.recovery.MaxDisconnectionDuration
	}
	data, err := genericValue(s.Data)
	if err != nil {
		data = nil
	}
	b, err := streamsMsgpack(object{{"sid", s.SID}, {"pid", s.PID}, {"rooms", roomStrings(s.Rooms)}, {"data", data}})
	if err == nil {
		ctx, cancel := a.ctx()
		defer cancel()
		err = a.hub.rdb.Set(ctx, a.opts().SessionKeyPrefix+s.PID, base64.StdEncoding.EncodeToString(b), ttl).Err()
	}
	if err != nil {
		a.opts().Logger.Warn("redisadapter: persisting a session", "namespace", a.nsp.Name(), "sid", s.SID, "err", err)
	}
}

// RestoreSession implements socketio.Adapter.
func (a *StreamsAdapter) RestoreSession(pid, offset string) (socketio.PersistedSession, []*socketio.EncodedPacket, bool) {
	s, missed, err := a.restore(pid, offset)
	if err != nil {
		a.opts().Logger.Debug("redisadapter: no recovery", "namespace", a.nsp.Name(), "pid", pid, "offset", offset, "err", err)
		return socketio.PersistedSession{}, nil, false
	}
	return s, missed, true
}

var errNoSession = errors.New("redisadapter: session or offset not found")

func (a *StreamsAdapter) restore(pid, offset string) (socketio.PersistedSession, []*socketio.EncodedPacket, error) {
	var s socketio.PersistedSession
	if !streamsOffsetRe.MatchString(offset) {
		return s, nil, errors.New("redisadapter: invalid offset")
	}
	ctx, cancel := a.ctx()
	defer cancel()
	rdb := a.hub.rdb
	key := a.opts().SessionKeyPrefix + pid
	var get *redis.StringCmd
	if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		p.Del(ctx, key)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return s, nil, err
	}
	raw, err := get.Result()
	if err != nil {
		if errors.Is(err, redis.Nil) {
			return s, nil, errNoSession
		}
		return s, nil, err
	}
	at, err := rdb.XRange(ctx, a.stream, offset, offset).Result()
	if err != nil {
		return s, nil, err
	}
	if len(at) == 0 {
		return s, nil, errNoSession
	}
	s, err = decodeSession(raw)
	if err != nil {
		return s, nil, err
	}
	var missed []*socketio.EncodedPacket
	for range streamsMaxPacketsInRestoreCall {
		entries, err := rdb.XRange(ctx, a.stream, nextStreamID(offset), "+").Result()
		if err != nil {
			return s, nil, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			offset = e.ID
			if nsp, _ := e.Values["nsp"].(string); nsp != a.nsp.Name() {
				continue
			}
			if t, _ := e.Values["type"].(string); t != strconv.Itoa(streamsBroadcast) {
				continue
			}
			m, err := streamsDecodeEntry(e.Values)
			if err != nil {
				continue
			}
			packet, _ := m.Data["packet"].(map[string]any)
			values, _ := packet["data"].([]any)
			opts := decodeStreamsOpts(m.Data["opts"])
			if _, withID := packet["id"]; withID || opts.Volatile || !reachesRooms(opts, s.Rooms) {
				continue
			}
			p, err := encodeValues(a.nsp.Name(), 0, false, append(values, e.ID))
			if err != nil {
				continue
			}
			p.Offset = e.ID
			missed = append(missed, p)
		}
	}
	return s, missed, nil
}

// decodeSession reads a session written by PersistSession or by the Node adapter.
func decodeSession(raw string) (socketio.PersistedSession, error) {
	var s socketio.PersistedSession
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return s, err
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return s, err
	}
	s.SID, _ = m["sid"].(string)
	s.PID, _ = m["pid"].(string)
	s.Rooms = asRooms(m["rooms"])
	s.Data = jsonSafe(m["data"])
	if s.SID == "" {
		return s, errors.New("redisadapter: session without sid")
	}
	return s, nil
}

// nextStreamID returns the smallest stream id after id (XRANGE's exclusive start, which
// Redis before 6.2 lacks).
func nextStreamID(id string) string {
	ts, seq, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ts + "-" + strconv.FormatUint(n+1, 10)
}

// reachesRooms reports whether a broadcast with opts reaches a socket in rooms
// (shouldIncludePacket).
func reachesRooms(opts socketio.BroadcastOptions, rooms []socketio.Room) bool {
	for _, r := range rooms {
		if slices.Contains(opts.Except, r) {
			return false
		}
	}
	if len(opts.Rooms) == 0 {
		return true
	}
	for _, r := range rooms {
		if slices.Contains(opts.Rooms, r) {
			return true
		}
	}
	return false
}

var _ socketio.ClusterAdapter = (*StreamsAdapter)(nil)
