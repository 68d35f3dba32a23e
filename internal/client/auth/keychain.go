package auth

import (
	"context"
	"errors"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Keychain resolves credentials from docker's config.json in dir ("" means
// Dir()), read afresh on every lookup so that a login in another process is
// seen. Registries without credentials are accessed anonymously.
type Keychain struct {
	Dir string
}

var _ authn.ContextKeychain = Keychain{}

// Resolve implements authn.Keychain.
func (k Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (k Keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	f, err := Load(k.Dir)
	if err != nil {
		return nil, err
	}
	c, err := f.Get(ctx, r.RegistryStr())
	if errors.Is(err, ErrNotLoggedIn) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, err
	}
	return Authenticator(c), nil
}

// Authenticator turns credentials into what go-containerregistry sends.
func Authenticator(c Credentials) authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
	})
}
