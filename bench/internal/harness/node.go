package harness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// NodeServer is one of the Node bench scripts (node/*.js), a server or a load
// (node/sioclient.js), and what it needs to run: node, the script, and the
// npm package it requires, installed in a node_modules directory that the
// script gets as NODE_PATH.
type NodeServer struct {
	Binary  string // the node binary
	Script  string // the server script, such as node/eioserver.js
	Modules string // the node_modules directory holding Package
	Package string // the npm package the script requires, such as "engine.io"
}

// AddFlags registers -node, -node-script (default script, described by
// scriptHelp) and -node-modules on fs, filling n; n.Package must be set.
func (n *NodeServer) AddFlags(fs *flag.FlagSet, script, scriptHelp string) {
	fs.StringVar(&n.Binary, "node", "node", "node binary")
	fs.StringVar(&n.Script, "node-script", script, scriptHelp)
	fs.StringVar(&n.Modules, "node-modules", "../test/interop/node_modules", "node_modules holding "+n.Package+" (NODE_PATH)")
}

// Check reports what is missing to run the server: node, the script (paths
// are relative to the bench directory) or the package.
func (n NodeServer) Check() error {
	if _, err := exec.LookPath(n.Binary); err != nil {
		return fmt.Errorf("node not found: %v", err)
	}
	if _, err := os.Stat(n.Script); err != nil {
		return fmt.Errorf("node script: %v (run from the bench directory)", err)
	}
	if _, err := os.Stat(filepath.Join(n.Modules, n.Package, "package.json")); err != nil {
		return fmt.Errorf("%s not installed in %s (cd test/interop && npm ci): %v", n.Package, n.Modules, err)
	}
	return nil
}

// Versions names node's version and those of packages installed in Modules:
// "node v20.20.2, engine.io 6.6.12". What cannot be read is left out ("node
// ?" for node).
func (n NodeServer) Versions(packages ...string) string {
	v := "node ?"
	if out, err := exec.Command(n.Binary, "--version").Output(); err == nil {
		v = "node " + strings.TrimSpace(string(out))
	}
	for _, pkg := range packages {
		var p struct{ Version string }
		if b, err := os.ReadFile(filepath.Join(n.Modules, pkg, "package.json")); err == nil && json.Unmarshal(b, &p) == nil {
			v += ", " + pkg + " " + p.Version
		}
	}
	return v
}

// Start starts the script on a free loopback port, pinned to the server CPU
// when p.Pin, with NODE_PATH set to Modules and the Engine.IO pingInterval
// and pingTimeout given (both bench scripts take [port] [pingIntervalMs]
// [pingTimeoutMs]), and waits for it to listen as StartServer does.
func (n NodeServer) Start(p Processes, pingInterval, pingTimeout time.Duration) (*Server, error) {
	return n.StartWith(p, pingInterval, pingTimeout)
}

// StartWith is Start with more arguments after the ping timeout (such as
// node/sioserver.js's Redis address).
func (n NodeServer) StartWith(p Processes, pingInterval, pingTimeout time.Duration, extra ...string) (*Server, error) {
	env, err := n.env()
	if err != nil {
		return nil, err
	}
	args := append([]string{n.Script, "0",
		strconv.FormatInt(pingInterval.Milliseconds(), 10), strconv.FormatInt(pingTimeout.Milliseconds(), 10)}, extra...)
	cmd := p.ServerCommand(n.Binary, args...)
	cmd.Env = env
	return StartServer("node server", cmd)
}

// RunLoad runs the script as a load generator with args, pinned to the load
// CPU when p.Pin and with NODE_PATH set to Modules, as Processes.RunLoad runs
// the Go load: killed after timeout, its last stdout line decoded into res.
func (n NodeServer) RunLoad(ctx context.Context, p Processes, timeout time.Duration, args []string, res any) error {
	env, err := n.env()
	if err != nil {
		return err
	}
	return p.RunLoadCommand(ctx, timeout, env, n.Binary, append([]string{n.Script}, args...), res)
}

// env is this process's environment with NODE_PATH set to Modules.
func (n NodeServer) env() ([]string, error) {
	mods, err := filepath.Abs(n.Modules)
	if err != nil {
		return nil, err
	}
	return append(os.Environ(), "NODE_PATH="+mods), nil
}
