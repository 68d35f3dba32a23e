package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSelfSigned_CreatesOnceAndRenewsForNewHosts: the CA and the server
// certificate are made once and kept while the hosts stay the same; new
// hosts make a new CA (the old one may sign only for the old hosts) and
// a certificate that verifies against it.
func TestSelfSigned_CreatesOnceAndRenewsForNewHosts(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	certFile, keyFile, err := selfSigned(dir, []string{"registry.example", "127.0.0.1"}, log)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(certFile)
	ca, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("server key: %v, mode %v; want 0600", err, st.Mode().Perm())
	}

	if _, _, err := selfSigned(dir, []string{"127.0.0.1", "registry.example"}, log); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(certFile)
	caAgain, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if string(again) != string(first) || string(caAgain) != string(ca) {
		t.Error("the same hosts in another order remade the certificate or the CA")
	}

	if _, _, err := selfSigned(dir, []string{"registry.example", "other.example"}, log); err != nil {
		t.Fatal(err)
	}
	cert, err := readCert(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"registry.example", "other.example"}) || len(cert.IPAddresses) != 0 {
		t.Errorf("renewed certificate names %v %v", cert.DNSNames, cert.IPAddresses)
	}
	newCA, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(newCA)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err != nil {
		t.Errorf("renewed certificate does not verify against the CA: %v", err)
	}
}

// TestSelfSigned_CACannotSignForOtherSites: whoever reads the CA key may
// not use it to impersonate a site other than the registry's hosts.
func TestSelfSigned_CACannotSignForOtherSites(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if _, _, err := selfSigned(dir, []string{"registry.example", "10.0.0.5"}, log); err != nil {
		t.Fatal(err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, []string{"registry.example", "10.0.0.5"}, log)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: serial(), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"bank.example"}, IPAddresses: []net.IP{net.ParseIP("10.0.0.6")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "bank.example"}); err == nil {
		t.Error("a certificate for bank.example signed by wharf's CA verifies")
	}
}

// TestCertReloader_PicksUpRenewedFiles: a certificate replaced on disk is
// served from the next handshake after the recheck interval, and a
// broken replacement keeps the previous one in service.
func TestCertReloader_PicksUpRenewedFiles(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	a, b := t.TempDir(), t.TempDir()
	certA, keyA, err := selfSigned(a, []string{"a.example"}, log)
	if err != nil {
		t.Fatal(err)
	}
	certB, keyB, err := selfSigned(b, []string{"b.example"}, log)
	if err != nil {
		t.Fatal(err)
	}
	live := t.TempDir()
	certFile, keyFile := filepath.Join(live, "tls.crt"), filepath.Join(live, "tls.key")
	copyFile(t, certA, certFile)
	copyFile(t, keyA, keyFile)
	rl := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := rl.load(); err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := rl.get(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.DNSNames[0]
	}
	if got := served(); got != "a.example" {
		t.Fatalf("serving %s, want a.example", got)
	}
	copyFile(t, certB, certFile)
	copyFile(t, keyB, keyFile)
	rl.checked = time.Now().Add(-2 * recheckEvery)
	if got := served(); got != "b.example" {
		t.Errorf("after renewal serving %s, want b.example", got)
	}
	if err := os.WriteFile(certFile, []byte("half-written"), 0o644); err != nil {
		t.Fatal(err)
	}
	rl.checked = time.Now().Add(-2 * recheckEvery)
	if got := served(); got != "b.example" {
		t.Errorf("after a broken renewal serving %s, want b.example still", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// A new mtime is not enough on coarse filesystems; the size differs
	// between certificates too, and the stamp includes it.
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5000": true, "[::1]:5000": true, "localhost:5000": true,
		":5000": false, "0.0.0.0:5000": false, "10.0.0.1:5000": false, "registry.example:443": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
