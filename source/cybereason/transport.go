package cybereason

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// newHTTPClient copies base (or builds a default client), disables redirects and the cookie jar,
// requires TLS 1.2 or later, and adds the CA certificates of caFile to the trusted roots.
func newHTTPClient(base *http.Client, caFile string) (*http.Client, error) {
	var client http.Client
	if base != nil {
		client = *base
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Jar = nil

	transport, err := newTransport(client.Transport, caFile)
	if err != nil {
		return nil, err
	}
	if transport != nil {
		client.Transport = transport
	}
	return &client, nil
}

// newTransport returns a clone of base with the TLS settings applied, or nil to keep base. A base
// that is not a *http.Transport is kept unchanged unless caFile is set, which it cannot apply.
func newTransport(base http.RoundTripper, caFile string) (*http.Transport, error) {
	var transport *http.Transport
	switch base := base.(type) {
	case nil:
		transport = http.DefaultTransport.(*http.Transport).Clone()
		transport.Proxy = http.ProxyFromEnvironment
	case *http.Transport:
		transport = base.Clone()
	default:
		if caFile != "" {
			return nil, fmt.Errorf("CAFile %q needs an HTTPClient whose Transport is a *http.Transport, not %T", caFile, base)
		}
		return nil, nil
	}

	if transport.TLSClientConfig == nil {
		transport.TLSClientConfig = &tls.Config{}
	}
	if transport.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		transport.TLSClientConfig.MinVersion = tls.VersionTLS12
	}
	if caFile != "" {
		roots, err := loadRoots(transport.TLSClientConfig.RootCAs, caFile)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig.RootCAs = roots
	}
	return transport, nil
}

// loadRoots returns a copy of roots, or of the system roots when roots is nil, with the
// certificates of the PEM file caFile added.
func loadRoots(roots *x509.CertPool, caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CAFile: %w", err)
	}

	if roots != nil {
		roots = roots.Clone()
	} else if roots, err = x509.SystemCertPool(); err != nil {
		// Without system roots, trust only the CA file, which is what an on-premises console needs.
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CAFile %q contains no PEM certificate", caFile)
	}
	return roots, nil
}

// describeCertificateError explains a failed certificate check and how to fix it. Other errors
// are returned unchanged. The result still wraps err, so errors.As finds the x509 and tls errors.
func describeCertificateError(err error) error {
	var (
		verification *tls.CertificateVerificationError
		unknownCA    x509.UnknownAuthorityError
		hostname     x509.HostnameError
		invalid      x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &hostname):
		return fmt.Errorf("the console's TLS certificate was not trusted because it does not match the host name of BaseURL: %w", err)
	case errors.As(err, &verification), errors.As(err, &unknownCA), errors.As(err, &invalid):
		return fmt.Errorf("the console's TLS certificate was not trusted; if the console uses a private CA, "+
			"set CAFile (CYBEREASON_CA_FILE) to a PEM file of that CA: %w", err)
	}
	return err
}
