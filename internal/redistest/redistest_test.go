package redistest

import (
	"strings"
	"testing"
	"time"
)

func TestStartKillRestart(t *testing.T) {
	s := StartServer(t)
	if err := ping(s.Addr); err != nil {
		t.Fatal(err)
	}
	Kill(t, s.Addr)
	if err := ping(s.Addr); err == nil {
		t.Fatal("killed server still answers")
	}
	Restart(t, s.Addr)
	if err := waitPing(s.Addr, 5*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if s.PID() == 0 {
		t.Fatal("no PID after restart")
	}
}

func TestStartUsesURL(t *testing.T) {
	s := StartServer(t)
	t.Setenv("REDIS_URL", "redis://"+s.Addr+"/0")
	if got := Start(t); got != s.Addr {
		t.Fatalf("Start = %q, want %q", got, s.Addr)
	}
}

func TestStartCluster(t *testing.T) {
	s := StartCluster(t)
	info, err := command(s.Addr, "CLUSTER", "INFO")
	if err != nil || !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("%q %v", info, err)
	}
	Restart(t, s.Addr)
	if info, err := command(s.Addr, "CLUSTER", "INFO"); err != nil || !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("after restart: %q %v", info, err)
	}
}
