package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors a caller can test with errors.Is; each comes wrapped with a
// message that says what to do.
var (
	// ErrUnauthorized: the registry wants (other) credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNameUnknown: the repository does not exist.
	ErrNameUnknown = errors.New("name unknown")
	// ErrManifestUnknown: the tag or digest does not exist.
	ErrManifestUnknown = errors.New("manifest unknown")
	// ErrUnreachable: no connection to the registry.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrHTTPRegistry: the registry speaks plain HTTP and is not allowed to.
	ErrHTTPRegistry = errors.New("registry answered HTTP to an HTTPS request")
	// ErrDenied: the registry refused a change its policies forbid (an
	// immutable tag, a quota); its message names the rule.
	ErrDenied = errors.New("denied")
)

// genericDenial reports whether a DENIED message is the registries'
// stock wording for a missing permission (docker's, Hub's and wharf's)
// rather than a policy's own explanation.
func genericDenial(msg string) bool {
	return msg == "" || strings.EqualFold(msg, "requested access to the resource is denied")
}

// explain turns what go-containerregistry and net/http return into an
// error a person can act on; what names the object ("registry.local:5000/gallery/ui:v1").
func explain(err error, host, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		codes := map[transport.ErrorCode]string{}
		for _, d := range terr.Errors {
			codes[d.Code] = d.Message
		}
		_, unauthorized := codes[transport.UnauthorizedErrorCode]
		deniedMsg, denied := codes[transport.DeniedErrorCode]
		switch {
		case denied && terr.StatusCode == http.StatusForbidden && !genericDenial(deniedMsg):
			// A policy said no (an immutable tag, a quota, a push gate):
			// logging in again would not help, and the registry's message
			// says what would.
			return fmt.Errorf("%w: %s: %s", ErrDenied, what, deniedMsg)
		case unauthorized || denied || terr.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("%w: access to %s was denied; if it needs credentials, run `wharf login %s`", ErrUnauthorized, what, host)
		case terr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: %s: access forbidden (403); check the account's permissions, or run `wharf login %s` with another account", ErrUnauthorized, what, host)
		}
		if _, ok := codes[transport.NameUnknownErrorCode]; ok {
			return fmt.Errorf("%w: repository %s does not exist at %s", ErrNameUnknown, what, host)
		}
		if _, ok := codes[transport.ManifestUnknownErrorCode]; ok {
			return fmt.Errorf("%w: manifest for %s not found", ErrManifestUnknown, what)
		}
		if terr.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %s not found", ErrManifestUnknown, what)
		}
		for _, d := range terr.Errors {
			msg := d.Message
			if msg == "" {
				msg = string(d.Code)
			}
			return fmt.Errorf("%s: %s: %s", what, d.Code, msg)
		}
		return fmt.Errorf("%s: registry %s answered %d %s", what, host, terr.StatusCode, http.StatusText(terr.StatusCode))
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return fmt.Errorf("%w: %s serves plain HTTP, not HTTPS. To allow it, pass --insecure or add %q to \"insecure-registries\" in $WHARF_HOME/config.json", ErrHTTPRegistry, host, host)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: cannot connect to %s: connection refused (is the registry running, and is the address right?)", ErrUnreachable, host)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return fmt.Errorf("%w: cannot resolve %s: %s", ErrUnreachable, hostname(host), dnsErr.Err)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Errorf("%w: cannot reach %s: %v", ErrUnreachable, host, opErr.Err)
	}
	if errors.Is(err, errPlainHTTPRefused) {
		return fmt.Errorf("%w: %s cannot be reached over HTTPS. If it serves plain HTTP, pass --insecure or add %q to \"insecure-registries\" in $WHARF_HOME/config.json", ErrUnreachable, host, host)
	}
	return err
}
