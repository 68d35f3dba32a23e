// Package secretkey holds the registry's secret key and seals small
// secrets with it (replication passwords, webhook signing secrets), so
// that a copy of the database alone does not give them away.
package secretkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the file in the data directory that holds a generated
// secret key when none is configured.
const KeyFile = "secret.key"

// ErrNoKey is returned when credentials must be sealed but no secret key
// is configured and none may be generated (replicas sharing a database
// must share one key, so they cannot each make their own).
var ErrNoKey = errors.New("no secret key: set secret_key (WHARF_SECRET_KEY, base64 of 32 bytes), shared by every replica, to store credentials")

// LoadKey returns the 32-byte secret key: the configured one (base64) if
// set; otherwise, when the metadata is local to this machine (shared is
// false) and dataDir is set, the one in dataDir/secret.key, generated
// with mode 0600 on first use; otherwise ErrNoKey.
func LoadKey(configured, dataDir string, shared bool) ([]byte, error) {
	if configured != "" {
		return decodeKey(configured, "secret_key")
	}
	if shared || dataDir == "" {
		return nil, ErrNoKey
	}
	path := filepath.Join(dataDir, KeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return decodeKey(string(b), path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	// O_EXCL: two processes generating at once must end with one key,
	// so the loser reads the winner's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey("", dataDir, false)
	}
	if err != nil {
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write secret key: %w", werr)
	}
	return key, nil
}

func decodeKey(s, from string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s: a secret key is base64 of exactly 32 bytes", from)
	}
	return key, nil
}

// Sealer encrypts small secrets (registry passwords, webhook secrets)
// with AES-256-GCM.
type Sealer struct{ aead cipher.AEAD }

// sealedPrefix marks the format, so that a later key rotation or cipher
// can tell old values from new ones.
const sealedPrefix = "v1:"

// NewSealer returns a Sealer for a 32-byte key from LoadKey.
func NewSealer(key []byte) (*Sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext under a fresh random nonce; aad binds it to
// what it belongs to (e.g. a rule's ID), so that a sealed value copied
// onto another row does not open there.
func (s *Sealer) Seal(plaintext, aad string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return sealedPrefix + base64.StdEncoding.EncodeToString(out)
}

// Open decrypts what Seal returned for the same aad.
func (s *Sealer) Open(sealed, aad string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", errors.New("open secret: unknown format")
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("open secret: malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(aad))
	if err != nil {
		// Most likely a different secret key than the one that sealed it.
		return "", errors.New("open secret: wrong secret key or tampered value")
	}
	return string(pt), nil
}
