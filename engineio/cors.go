package engineio

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSOptions configures the Cross-Origin Resource Sharing headers of a Server, as the
// cors option of the Node server (the cors npm package) does.
type CORSOptions struct {
	// Origins lists the allowed origins, exactly as browsers send them
	// ("https://app.example.com"); "*" allows every origin.
	Origins []string
	// AllowOrigin, when set, decides instead of Origins.
	AllowOrigin func(origin string) bool
	// Credentials lets browsers send cookies and read answers to credentialed requests
	// (Access-Control-Allow-Credentials: true). The allowed origin is then always echoed,
	// never "*", which browsers refuse with credentials.
	Credentials bool
	// Methods are the methods a preflight allows (nil: GET, HEAD, PUT, PATCH, POST, DELETE).
	Methods []string
	// Headers are the request headers a preflight allows (nil: those the browser asks for).
	Headers []string
	// ExposedHeaders are the response headers scripts may read.
	ExposedHeaders []string
	// MaxAge is how long a browser may cache a preflight answer (0: no header).
	MaxAge time.Duration
}

var defaultCORSMethods = "GET,HEAD,PUT,PATCH,POST,DELETE"

// apply sets the CORS headers of the answer to r. It answers a preflight request itself
// (204) and then reports true.
func (c *CORSOptions) apply(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	origin := r.Header.Get("Origin")
	anyOrigin := c.AllowOrigin == nil && slices.Contains(c.Origins, "*")
	switch {
	case anyOrigin && !c.Credentials:
		h.Set("Access-Control-Allow-Origin", "*")
	case origin != "" && (anyOrigin || c.allows(origin)):
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	default:
		h.Add("Vary", "Origin")
	}
	if c.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(c.ExposedHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposedHeaders, ","))
	}
	if r.Method != http.MethodOptions {
		return false
	}
	methods := defaultCORSMethods
	if c.Methods != nil {
		methods = strings.Join(c.Methods, ",")
	}
	h.Set("Access-Control-Allow-Methods", methods)
	if c.Headers != nil {
		h.Set("Access-Control-Allow-Headers", strings.Join(c.Headers, ","))
	} else if asked := r.Header.Get("Access-Control-Request-Headers"); asked != "" {
		h.Set("Access-Control-Allow-Headers", asked)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	if c.MaxAge > 0 {
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge/time.Second)))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

func (c *CORSOptions) allows(origin string) bool {
	if c.AllowOrigin != nil {
		return c.AllowOrigin(origin)
	}
	return slices.Contains(c.Origins, origin)
}
