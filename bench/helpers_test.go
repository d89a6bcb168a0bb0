package bench

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
)

// listenLoopback listens on a free loopback port.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// buildCommands builds the bench commands pkgs (such as "./cmd/load") into a
// temporary directory and returns it.
func buildCommands(t *testing.T, pkgs ...string) string {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// nodeModules is where test/interop's npm ci installs engine.io and
// socket.io.
const nodeModules = "../test/interop/node_modules"

// The Node bench servers, run from node_modules of test/interop.
var (
	nodeEIO = harness.NodeServer{Binary: "node", Script: "node/eioserver.js", Modules: nodeModules, Package: "engine.io"}
	nodeSIO = harness.NodeServer{Binary: "node", Script: "node/sioserver.js", Modules: nodeModules, Package: "socket.io"}
)

// checkNode returns what is missing to run the Node server n, or nil; when
// something is missing and DUPLEX_INTEROP=required, it fails the test.
func checkNode(t *testing.T, n harness.NodeServer) error {
	t.Helper()
	err := n.Check()
	if err != nil && os.Getenv("DUPLEX_INTEROP") == "required" {
		t.Fatalf("%v (DUPLEX_INTEROP=required)", err)
	}
	return err
}

// startNode runs the Node server n with the given Engine.IO ping interval
// and timeout and returns its address; the process is ended by its PID at
// cleanup. Without node or the package the test is skipped (or fails, when
// DUPLEX_INTEROP=required).
func startNode(t *testing.T, n harness.NodeServer, ping time.Duration) string {
	t.Helper()
	if err := checkNode(t, n); err != nil {
		t.Skipf("%v (set DUPLEX_INTEROP=required to fail instead)", err)
	}
	srv, err := n.Start(harness.Processes{}, ping, ping)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv.Addr
}
