package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/canopy-sso/canopy/pkg/localhost"
)

// testPKI writes a CA and a leaf for domain.localhost and *.domain.localhost.
func testPKI(t *testing.T, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Canopy test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "domain.localhost"},
		DNSNames:  []string{"domain.localhost", "*.domain.localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", leafDER), write("key.pem", "EC PRIVATE KEY", keyDER), pool
}

// TestHTTPSJourney runs the journey over HTTPS with a test CA: production
// cookie names (__Secure-/__Host-), Secure cookies and HSTS.
func TestHTTPSJourney(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile, pool := testPKI(t, dir)
	ip, up := freePort(t), freePort(t)
	issuerURL := fmt.Sprintf("https://domain.localhost:%d", ip)
	iss := start(t, "issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", ip), "--url", issuerURL,
		"--db", filepath.Join(dir, "db"), "--keys", filepath.Join(dir, "keys"), "--tls-cert", certFile, "--tls-key", keyFile)
	rel := startEnv(t, []string{"SSL_CERT_FILE=" + caFile}, "relying", "--listen", fmt.Sprintf("127.0.0.1:%d", up),
		"--issuer", issuerURL, "--host", "{username}.domain.localhost", "--tls-cert", certFile, "--tls-key", keyFile)

	tr := localhost.Transport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	jar, _ := cookiejar.New(&cookiejar.Options{PublicSuffixList: publicsuffix.List})
	b := &browser{t: t, jar: jar, client: &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	waitTLS(t, b, issuerURL+"/healthz", iss)
	waitTLS(t, b, fmt.Sprintf("https://alice.domain.localhost:%d/.canopy/readyz", up), rel)

	s := &stack{issuerURL: issuerURL, domain: "domain.localhost", userPort: up}
	alice := fmt.Sprintf("https://alice.domain.localhost:%d/", up)
	r := s.signUp(t, b, "alice", alicePW, alice)
	if r.status != http.StatusSeeOther || r.location != alice {
		t.Fatalf("sign-up over https: %d %q\n%s", r.status, r.location, r.body)
	}
	if !strings.Contains(r.header.Get("Strict-Transport-Security"), "includeSubDomains") {
		t.Fatalf("no HSTS with includeSubDomains: %q", r.header.Get("Strict-Transport-Security"))
	}
	var sawAccess, sawRefresh bool
	for _, line := range r.header.Values("Set-Cookie") {
		switch {
		case strings.HasPrefix(line, "__Secure-canopy="):
			sawAccess = strings.Contains(line, "Domain=domain.localhost") && strings.Contains(line, "Secure") && strings.Contains(line, "HttpOnly")
		case strings.HasPrefix(line, "__Host-canopy-refresh="):
			sawRefresh = !strings.Contains(line, "Domain=") && strings.Contains(line, "Secure") && strings.Contains(line, "Path=/")
		}
	}
	if !sawAccess || !sawRefresh {
		t.Fatalf("production cookies wrong: %q", r.header.Values("Set-Cookie"))
	}
	if r = b.navigate(alice); r.status != http.StatusOK || !strings.Contains(r.body, "alice") {
		t.Fatalf("alice's page over https: %d\n%s", r.status, r.body)
	}
	if r = b.navigate(fmt.Sprintf("https://bob.domain.localhost:%d/", up)); r.status != http.StatusForbidden {
		t.Fatalf("bob's page over https: %d", r.status)
	}
}

func waitTLS(t *testing.T, b *browser, u string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.name, p.Output())
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if resp, err := b.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready at %s:\n%s", p.name, u, p.Output())
}
