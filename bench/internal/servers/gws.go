package servers

import (
	"net"
	"net/http"

	"github.com/lxzan/gws"
)

// gwsEcho is a gws event handler that echoes every message from OnMessage.
type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

// gws: NewUpgrader with default options (ParallelEnabled false, no
// compression) mounted on net/http, then ReadLoop in its own goroutine, as
// gws's README shows.
func init() {
	register("gws", func(ln net.Listener) (Server, error) {
		up := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{})
		return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go c.ReadLoop()
		})), nil
	})
}
