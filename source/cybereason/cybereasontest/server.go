package cybereasontest

import (
	"net/http"
	"net/http/httptest"
)

// Server is a fake console listening on a loopback port. The fault injection and Stats methods of
// its Console are available on it directly.
type Server struct {
	*Console
	URL string // base URL, e.g. http://127.0.0.1:41234, without a trailing slash

	server *httptest.Server
}

// NewServer starts a plain-HTTP fake console on 127.0.0.1 on a free port. Call Close when done.
func NewServer(t *Tenant, opts Options) *Server {
	console := NewHandler(t, opts)
	server := httptest.NewServer(console)
	return &Server{Console: console, URL: server.URL, server: server}
}

// Client returns an HTTP client configured for the server.
func (s *Server) Client() *http.Client {
	return s.server.Client()
}

// Close stops the server and waits for the requests in flight.
func (s *Server) Close() {
	s.server.Close()
}
