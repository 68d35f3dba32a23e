package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com): a
// receiver checks the signature over "id.timestamp.body" and refuses a
// timestamp too far from its clock, which stops replays.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a Standard Webhooks secret; base64 of the key follows.
const secretPrefix = "whsec_"

// ErrSecretInvalid is a secret that is not whsec_ and base64 of 24 to 64
// bytes.
var ErrSecretInvalid = errors.New("notify: a secret is whsec_ followed by base64 of 24 to 64 random bytes")

// NewSecret returns a fresh signing secret.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// secretKey is the HMAC key a secret stands for.
func secretKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, ErrSecretInvalid
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrSecretInvalid
	}
	return key, nil
}

// Sign returns the webhook-signature header's value: one "v1,<base64
// HMAC-SHA256>" per secret, space-separated, so that a receiver that knows
// either the old or the new secret accepts a delivery during a rotation.
func Sign(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
