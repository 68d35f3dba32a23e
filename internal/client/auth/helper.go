package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// notFoundMessage is what docker's credential helpers print when they hold
// nothing for a server (docker-credential-helpers/credentials.ErrCredentialsNotFound).
const notFoundMessage = "credentials not found in native keychain"

// tokenUser is the user name helpers store with an identity token.
const tokenUser = "<token>"

// helperCreds is the helpers' wire format.
type helperCreds struct {
	ServerURL string `json:"ServerURL"`
	Username  string `json:"Username"`
	Secret    string `json:"Secret"`
}

// runHelper runs docker-credential-NAME ACTION with input on stdin.
func runHelper(ctx context.Context, name, action string, input []byte) ([]byte, error) {
	prog := "docker-credential-" + name
	cmd := exec.CommandContext(ctx, prog, action)
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stdout.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if msg == notFoundMessage {
			return nil, ErrNotLoggedIn
		}
		var execErr *exec.Error
		if errors.As(err, &execErr) {
			return nil, fmt.Errorf("credential helper %s is configured in config.json but cannot be run: %w", prog, err)
		}
		if msg != "" {
			return nil, fmt.Errorf("credential helper %s %s: %s", prog, action, msg)
		}
		return nil, fmt.Errorf("credential helper %s %s: %w", prog, action, err)
	}
	return stdout.Bytes(), nil
}

// helperGet asks a helper for the credentials of server; none is not an error.
func helperGet(ctx context.Context, name, server string) (Credentials, error) {
	out, err := runHelper(ctx, name, "get", []byte(server))
	if errors.Is(err, ErrNotLoggedIn) {
		return Credentials{}, nil
	}
	if err != nil {
		return Credentials{}, err
	}
	var hc helperCreds
	if err := json.Unmarshal(out, &hc); err != nil {
		return Credentials{}, fmt.Errorf("credential helper docker-credential-%s get: invalid answer: %w", name, err)
	}
	if hc.Username == tokenUser {
		return Credentials{IdentityToken: hc.Secret}, nil
	}
	return Credentials{Username: hc.Username, Password: hc.Secret}, nil
}

// helperStore hands credentials to a helper.
func helperStore(ctx context.Context, name, server string, c Credentials) error {
	hc := helperCreds{ServerURL: server, Username: c.Username, Secret: c.Password}
	if c.IdentityToken != "" {
		hc.Username, hc.Secret = tokenUser, c.IdentityToken
	}
	in, err := json.Marshal(hc)
	if err != nil {
		return err
	}
	_, err = runHelper(ctx, name, "store", in)
	return err
}

// helperErase asks a helper to forget server; it reports whether it knew it.
func helperErase(ctx context.Context, name, server string) (bool, error) {
	_, err := runHelper(ctx, name, "erase", []byte(server))
	if errors.Is(err, ErrNotLoggedIn) {
		return false, nil
	}
	return err == nil, err
}
