package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharf/wharf/internal/config"
)

// tlsConfig returns the HTTPS configuration cfg asks for, or nil for
// plain HTTP.
func tlsConfig(cfg config.Config, log *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := cfg.TLS.Cert, cfg.TLS.Key
	if len(cfg.TLS.SelfSigned) > 0 {
		var err error
		if certFile, keyFile, err = selfSigned(filepath.Join(cfg.DataDir, "tls"), cfg.TLS.SelfSigned, log); err != nil {
			return nil, fmt.Errorf("self-signed certificate: %w", err)
		}
	}
	if certFile == "" {
		return nil, nil
	}
	rl := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := rl.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: rl.get}, nil
}

// certReloader serves a certificate pair from files and reloads it when
// either file changes, so a renewed certificate needs no restart.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string    // the files' sizes and mtimes at the last load
	checked time.Time // the last time the files were looked at
}

// recheckEvery bounds how often a handshake stats the files.
const recheckEvery = time.Second

func (c *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, f := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d:%d;", st.Size(), st.ModTime().UnixNano())
	}
	return stamp, nil
}

func (c *certReloader) load() error {
	stamp, err := c.fileStamp()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.cert, c.stamp, c.checked = &cert, stamp, time.Now()
	return nil
}

func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) < recheckEvery {
		return c.cert, nil
	}
	c.checked = time.Now()
	stamp, err := c.fileStamp()
	if err != nil || stamp == c.stamp {
		return c.cert, nil
	}
	old := c.cert
	if err := c.load(); err != nil {
		// A half-written renewal must not take the server down: keep serving
		// the old pair and try again on a later handshake.
		c.cert = old
		c.log.Warn("tls certificate changed but does not load; serving the previous one", "err", err)
		return old, nil
	}
	c.log.Info("tls certificate reloaded", "cert", c.certFile)
	return c.cert, nil
}

// selfSigned makes sure dir holds a CA (ca.crt, ca.key) and a server
// certificate for hosts signed by it (server.crt, server.key), creating
// or renewing what is missing, and returns the server pair's paths.
func selfSigned(dir string, hosts []string, log *slog.Logger) (certFile, keyFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	caCert, caKey, err := loadOrCreateCA(dir, hosts, log)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if current(certFile, hosts, caCert) {
		return certFile, keyFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"wharf"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(397 * 24 * time.Hour), // browsers' maximum
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return "", "", err
	}
	ca := filepath.Join(dir, "ca.crt")
	log.Info("generated a TLS certificate signed by wharf's own CA; clients must trust the CA", "hosts", hosts, "ca", ca)
	log.Info("to trust it in docker: mkdir -p /etc/docker/certs.d/HOST:PORT && cp " + ca + " /etc/docker/certs.d/HOST:PORT/ca.crt")
	log.Info("to trust it system-wide (Debian/Ubuntu): cp " + ca + " /usr/local/share/ca-certificates/wharf.crt && update-ca-certificates")
	return certFile, keyFile, nil
}

// current reports whether certFile exists, is signed by ca, names
// exactly hosts and has more than 30 days left.
func current(certFile string, hosts []string, ca *x509.Certificate) bool {
	cert, err := readCert(certFile)
	if err != nil || time.Until(cert.NotAfter) < 30*24*time.Hour || cert.CheckSignatureFrom(ca) != nil {
		return false
	}
	var names []string
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	want := slices.Clone(hosts)
	for i, h := range want {
		if ip := net.ParseIP(h); ip != nil {
			want[i] = ip.String()
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	return slices.Equal(names, slices.Compact(want))
}

// loadOrCreateCA returns the CA in dir, or makes one. The CA may sign only
// for hosts (critical name constraints): people are told to trust it
// system-wide, and its key sits in the data directory, so whoever reads
// that key must not be able to impersonate any other site. A CA whose
// constraints do not cover hosts is replaced, and the log says so.
func loadOrCreateCA(dir string, hosts []string, log *slog.Logger) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	cert, err := readCert(certFile)
	if err == nil && !permits(cert, hosts) {
		log.Warn("the generated CA does not cover the --tls-self-signed hosts; making a new one — clients must trust the new ca.crt",
			"ca", certFile, "hosts", hosts)
		err = os.ErrNotExist
	}
	if err == nil {
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, err
		}
		block, _ := pem.Decode(keyPEM)
		if block == nil {
			return nil, nil, errors.New(keyFile + ": no PEM block")
		}
		key, err := x509.ParseECPrivateKey(block.Bytes)
		return cert, key, err
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "wharf CA", Organization: []string{"wharf"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,

		PermittedDNSDomainsCritical: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			bits := 8 * len(ip.To16())
			if ip4 := ip.To4(); ip4 != nil {
				ip, bits = ip4, 32
			}
			tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
		} else {
			tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(certFile, keyFile, der, key); err != nil {
		return nil, nil, err
	}
	cert, err = x509.ParseCertificate(der)
	return cert, key, err
}

// permits reports whether ca is name-constrained to cover every host.
func permits(ca *x509.Certificate, hosts []string) bool {
	if !ca.PermittedDNSDomainsCritical {
		return false // made before constraints, or by someone else
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ca.PermittedIPRanges, func(n *net.IPNet) bool { return n.Contains(ip) }) {
				return false
			}
			continue
		}
		if !slices.ContainsFunc(ca.PermittedDNSDomains, func(d string) bool { return d == h || strings.HasSuffix(h, "."+d) }) {
			return false
		}
	}
	return true
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New(path + ": no certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// writePair writes a certificate and its key; the key is readable by the
// owner only.
func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
