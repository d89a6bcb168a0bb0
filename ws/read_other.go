//go:build !unix

package ws

// setupRawRead does nothing where raw socket reads are not available: reads then wait with a
// pooled buffer held.
func (c *Conn) setupRawRead() {}
