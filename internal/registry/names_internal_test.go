package registry

import (
	"regexp"
	"strings"
	"testing"
)

// The spec's regexps, which validName and validTag must agree with on
// every string.
var (
	specNameRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	specTagRe  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// grammarSeeds are strings near the edges of both grammars.
var grammarSeeds = []string{
	"", "a", "A", "0", "_", ".", "-", "/", "a/b", "a//b", "/a", "a/", "a.b", "a..b", "a_b", "a__b", "a___b",
	"a-b", "a--b", "a---b", "a.-b", "a-.b", "a_-b", "a-_b", "a._b", "a_.b", "a__.b", "_a", "a_", "-a", "a-",
	".a", "a.", "a/.b", "a/_b", "a/-b", "a.b/c_d/e__f/g--h", "library/ubuntu", "Library", "a b", "a\nb", "a\n",
	"a\x00", "ü", "aü", "v1.2.3", "V1", "_internal", "-x", ".x", "x-", "x.", "x_", "a:b", "a@b",
	strings.Repeat("a", 128), strings.Repeat("a", 129), strings.Repeat("a/", 127) + "a", "a" + strings.Repeat("-", 300) + "b",
}

func checkGrammar(t *testing.T, s string) {
	t.Helper()
	if got, want := validName(s), specNameRe.MatchString(s); got != want {
		t.Errorf("validName(%q) = %v, the spec's regexp says %v", s, got, want)
	}
	if got, want := validTag(s), specTagRe.MatchString(s); got != want {
		t.Errorf("validTag(%q) = %v, the spec's regexp says %v", s, got, want)
	}
}

func TestGrammarMatchesSpecRegexps(t *testing.T) {
	for _, s := range grammarSeeds {
		checkGrammar(t, s)
	}
	// Every string of up to 4 bytes over an alphabet holding each class
	// the grammars distinguish (plus bytes neither allows).
	alphabet := []byte("aZ0._-/:\xc3")
	var gen func(prefix []byte, n int)
	gen = func(prefix []byte, n int) {
		checkGrammar(t, string(prefix))
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			gen(append(prefix, c), n-1)
		}
	}
	gen(nil, 4)
}

func FuzzGrammarMatchesSpecRegexps(f *testing.F) {
	for _, s := range grammarSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkGrammar(t, s) })
}

func BenchmarkValidateNameTag(b *testing.B) {
	for b.Loop() {
		if ValidateName("team/app-api/service_v2") != nil || ValidateTag("v1.2.3-rc.1") != nil {
			b.Fatal("rejected")
		}
	}
}
