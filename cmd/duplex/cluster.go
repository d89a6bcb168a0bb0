package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

// clusterConfig is the part of "duplex serve"'s command line that makes it a node of a
// cluster over Redis.
type clusterConfig struct {
	redisURL string
	key      string
	relay    bool
}

func (c *clusterConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.redisURL, "redis", "", "`URL` of a Redis server (redis://[user:password@]host:port[/db], rediss:// for TLS):\nrun as a node of a cluster, Socket.IO broadcasts and rooms shared through Redis pub/sub")
	fs.StringVar(&c.key, "redis-key", redisadapter.DefaultKey, "prefix of the Redis channels of the cluster (with --redis); nodes that share it form one cluster")
	fs.BoolVar(&c.relay, "relay", true, "with --redis, relay long-polling requests for sessions of other nodes to them through Redis,\nso that the load balancer need not be sticky (--relay=false: a sticky balancer is needed)")
}

func (c *clusterConfig) check(fixture bool) error {
	if c.redisURL == "" {
		return nil
	}
	if fixture {
		return errors.New("--redis and --fixture do not go together")
	}
	if c.key == "" {
		return errors.New("--redis-key must not be empty")
	}
	if _, err := redis.ParseURL(c.redisURL); err != nil {
		return fmt.Errorf("--redis: %v", err)
	}
	return nil
}

// cluster is the Redis side of a node: nil fields without --redis.
type cluster struct {
	cfg    *clusterConfig
	rdb    *redis.Client
	rel    *redisadapter.Relay
	ads    adapters
	logger *slog.Logger
}

// redisDialTimeout bounds the first contact with Redis.
const redisDialTimeout = 5 * time.Second

// connect connects to Redis when --redis is given and checks that it answers.
func (c *clusterConfig) connect(ctx context.Context, logger *slog.Logger) (*cluster, error) {
	cl := &cluster{cfg: c, logger: logger}
	if c.redisURL == "" {
		return cl, nil
	}
	opts, err := redis.ParseURL(c.redisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis: %v", err)
	}
	cl.rdb = redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, redisDialTimeout)
	defer cancel()
	if err := cl.rdb.Ping(pctx).Err(); err != nil {
		_ = cl.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", redactURL(c.redisURL), err)
	}
	return cl, nil
}

// newAdapter returns the Socket.IO adapter of the node: Redis pub/sub with --redis, the
// in-memory one (nil) without.
func (cl *cluster) newAdapter() socketio.NewAdapterFunc {
	if cl.rdb == nil {
		return nil
	}
	return cl.ads.newRedisAdapter(cl.rdb, cl.cfg.key, cl.logger)
}

// relay starts the relay of polling requests of engine with --redis and --relay.
func (cl *cluster) relay(ctx context.Context, engine *engineio.Server, logger *slog.Logger) error {
	if cl.rdb == nil || !cl.cfg.relay {
		return nil
	}
	rel, err := redisadapter.NewRelay(ctx, cl.rdb, engine, &redisadapter.RelayOptions{Key: cl.cfg.key, Logger: logger})
	if err != nil {
		return err
	}
	cl.rel = rel
	return nil
}

func (cl *cluster) adapterName() string {
	if cl.rdb == nil {
		return "memory"
	}
	return "redis"
}

// print says which cluster the node is part of.
func (cl *cluster) print(w io.Writer) {
	if cl.rdb == nil {
		return
	}
	relay := "off (a sticky load balancer is needed for polling)"
	if cl.rel != nil {
		relay = "on, node " + cl.rel.NodeID()
	}
	fmt.Fprintf(w, "cluster node on Redis %s, key %q; long-polling relay %s\n", redactURL(cl.cfg.redisURL), cl.cfg.key, relay)
}

// drain releases the polls relayed through this node (see redisadapter.Relay.Drain).
func (cl *cluster) drain(ctx context.Context) error {
	if cl.rel == nil {
		return nil
	}
	return cl.rel.Drain(ctx)
}

// close closes the relay and the adapters, then the Redis client; the Socket.IO server is
// shut down first.
func (cl *cluster) close() {
	cl.ads.close()
	if cl.rel != nil {
		if err := cl.rel.Close(); err != nil {
			cl.logger.Debug("closing the relay", "error", err)
		}
	}
	if cl.rdb != nil {
		_ = cl.rdb.Close()
	}
}

// redactURL returns u with its password, if any, replaced by xxxxx.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(bad URL)"
	}
	return p.Redacted()
}
