package cybereasontest

import (
	"encoding/pem"
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

// NewTLSServer starts an HTTPS fake console on 127.0.0.1 on a free port, with a self-signed
// certificate for 127.0.0.1 that no system trusts. CertificatePEM returns it for a client's CA
// file. Call Close when done.
func NewTLSServer(t *Tenant, opts Options) *Server {
	console := NewHandler(t, opts)
	server := httptest.NewTLSServer(console)
	return &Server{Console: console, URL: server.URL, server: server}
}

// CertificatePEM returns the certificate of a server started by NewTLSServer in PEM form, or nil
// for a plain-HTTP server. The certificate is its own CA, so it can serve as a client's CA file.
func (s *Server) CertificatePEM() []byte {
	cert := s.server.Certificate()
	if cert == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// Client returns an HTTP client configured for the server. For a TLS server it trusts the
// server's certificate.
func (s *Server) Client() *http.Client {
	return s.server.Client()
}

// Close stops the server and waits for the requests in flight.
func (s *Server) Close() {
	s.server.Close()
}
