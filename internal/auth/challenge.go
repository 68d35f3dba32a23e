package auth

import "strings"

// Bearer challenge error codes (RFC 6750).
const (
	ChallengeInvalidToken      = "invalid_token"
	ChallengeInsufficientScope = "insufficient_scope"
)

// Challenge is a WWW-Authenticate bearer challenge telling a docker client
// where to get a token and for what.
type Challenge struct {
	Realm   string   // the token endpoint, e.g. https://registry.example.com/token
	Service string   // the service name tokens are issued for
	Scopes  []Access // several are sent space-separated in one scope
	Error   string   // "", ChallengeInvalidToken or ChallengeInsufficientScope
}

// String formats the header value:
// Bearer realm="…",service="…",scope="…"[,error="…"].
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer ")
	param(&b, "realm", c.Realm, true)
	param(&b, "service", c.Service, false)
	if len(c.Scopes) > 0 {
		scopes := make([]string, len(c.Scopes))
		for i, s := range c.Scopes {
			scopes[i] = s.String()
		}
		param(&b, "scope", strings.Join(scopes, " "), false)
	}
	if c.Error != "" {
		param(&b, "error", c.Error, false)
	}
	return b.String()
}

func param(b *strings.Builder, name, value string, first bool) {
	if !first {
		b.WriteByte(',')
	}
	b.WriteString(name)
	b.WriteString(`="`)
	for _, r := range value {
		// A quoted-string escapes quote and backslash; control characters
		// cannot appear in a header at all.
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		if r < 0x20 || r == 0x7f {
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
}
