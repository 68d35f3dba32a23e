package secretkey

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadKey_GeneratesOnceWithMode0600(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadKey("", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadKey("", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1) != string(k2) || len(k1) != 32 {
		t.Errorf("second load returned another key")
	}
}

func TestLoadKey_ConfiguredWinsAndIsValidated(t *testing.T) {
	want := make([]byte, 32)
	want[0] = 7
	got, err := LoadKey(base64.StdEncoding.EncodeToString(want), t.TempDir(), true)
	if err != nil || string(got) != string(want) {
		t.Fatalf("configured key: %v %v", got, err)
	}
	if _, err := LoadKey(base64.StdEncoding.EncodeToString(want[:16]), "", true); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func TestLoadKey_RefusesSharedMetadataWithoutKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKey("", dir, true); !errors.Is(err, ErrNoKey) {
		t.Fatalf("err = %v, want ErrNoKey", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		t.Error("a key was generated for shared metadata")
	}
	if strings.Contains(ErrNoKey.Error(), "\n") {
		t.Error("the error is not one line")
	}
}

func TestSealer_NotPlaintextAndBoundToAAD(t *testing.T) {
	key, err := LoadKey("", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("hunter2-password", "rule:1")
	if strings.Contains(sealed, "hunter2") {
		t.Fatalf("sealed value holds the plaintext: %s", sealed)
	}
	if got, err := s.Open(sealed, "rule:1"); err != nil || got != "hunter2-password" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "rule:2"); err == nil {
		t.Error("opened under another rule's aad")
	}
	other, _ := NewSealer(make([]byte, 32))
	if _, err := other.Open(sealed, "rule:1"); err == nil {
		t.Error("opened with another key")
	}
}
