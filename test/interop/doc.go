// Package interop tests duplex's ws package against real peers: the Node
// packages ws and websocket (WebSocket-Node) and headless Chromium driven by
// playwright-core. The peers are the small scripts in this directory; their
// npm dependencies are pinned by package-lock.json (npm ci installs them).
//
// Without node_modules or /usr/bin/chromium the tests skip, unless the
// environment has DUPLEX_INTEROP=required (scripts/test sets it), in which
// case they fail.
package interop
