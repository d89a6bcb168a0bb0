// Command duplex serves the duplex demo and fixtures and talks to WebSocket servers. Run
// "duplex help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a command line and returns the exit status. stdin is read by the commands that
// take input (dial); cancelling ctx ends any command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		if err := serve(ctx, args[1:], stdout, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, "duplex serve:", err)
			return 1
		}
		return 0
	case "dial":
		return dial(ctx, args[1:], stdin, stdout, stderr)
	case "trace":
		return traceCmd(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "duplex: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: duplex <command> [flags]

commands:
  serve   serve the demo endpoints on --addr (/: a chat page; /echo: WebSocket echo;
          /socket.io/: Socket.IO with echo, join, leave, broadcast and the chat's events;
          /healthz; /metrics for Prometheus); --fixture serves the protocol suites' fixtures
          at /socket.io/ and /engine.io/; SIGINT or SIGTERM shuts it down gracefully
          ("duplex serve -h" lists the flags)
  dial    connect to a WebSocket URL: stdin lines are sent, messages received are printed;
          with --sio, to a Socket.IO server: stdin lines "emit EVENT [JSON args...]"
  trace   a proxy from --listen to --upstream that prints every handshake, frame (bit by bit),
          message and Engine.IO/Socket.IO packet it relays, over WebSocket and polling
  bench   load generator: --mode ws-echo, sio-echo, sio-broadcast or idle-connections
  help    show this help
`)
}
