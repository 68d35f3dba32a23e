package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wharf/wharf/internal/metadata"
	"github.com/wharf/wharf/internal/registry/retention"
)

// Policies are wharf's per-repository settings: KEY=VALUE pairs set on a
// PATTERN, which is either
//
//   - a repository name (gallery/ui): that repository only;
//   - a namespace glob (golden/*): every repository whose name starts with
//     golden/, at any depth (golden/base and golden/dotnet/sdk alike). The
//     `*` stands for the rest of the name, one segment or more, and may
//     only end the pattern as a whole segment; or
//   - `*` alone: every repository.
//
// For each key, the most specific pattern that sets it wins: the
// repository itself, then the glob with the longest prefix, then `*`.
// With golden/* floating-tags=semver and golden/legacy floating-tags=off,
// golden/base floats and golden/legacy does not; a key no pattern sets
// has its default. Patterns do not merge values: a key's value comes
// whole from one pattern.

// KeyFloatingTags is the key of semver floating tags.
const KeyFloatingTags = "floating-tags"

// The keys of golden images (lineage.go).
const (
	KeyGolden            = "golden"
	KeyRequireGoldenBase = "require-golden-base"
	KeyAllowScratch      = "allow-scratch"
)

// PolicyKey declares one setting that policies may hold.
type PolicyKey struct {
	Name string
	// Values sums up the accepted values, for help and error messages.
	Values string
	// Choices are the accepted values when they are a fixed few (the
	// settings pages offer them in a list), nil for free-form values.
	Choices []string
	// Default is the value in effect when no pattern sets the key.
	Default string
	// Doc is one line for `wharf policy` and the settings pages.
	Doc string
	// Check refuses a value the key does not accept.
	Check func(value string) error
	// CheckPattern, if set, refuses a pattern the key cannot be set on.
	CheckPattern func(pattern string) error
}

// policyKeys is the one list of known keys: a new setting is one more
// entry here, and the CLI, the API and the pages learn it from this list.
var policyKeys = []PolicyKey{
	{Name: KeyFloatingTags, Values: "semver|off", Choices: []string{"semver", "off"}, Default: "off", Check: oneOf("semver", "off"),
		Doc: "semver: a pushed version tag (2.1.106, v2.1.106) moves 2.1, 2 and latest when it is the highest of their line, and version tags are immutable"},
	{Name: KeyGolden, Values: "true|false", Default: "false", Check: oneOf("true", "false"),
		Doc: "true: the repositories hold golden images, which wharf finds pushed images built on"},
	{Name: KeyRequireGoldenBase, Values: "true|false", Default: "false", Check: oneOf("true", "false"),
		Doc: "true: a pushed image must be built on a golden image (golden repositories themselves are exempt)"},
	{Name: KeyQuota, Values: "SIZE|none", Default: "none", Check: checkQuota, CheckPattern: namespacePattern,
		Doc: "the storage a namespace may use (10GB, 500MiB), each blob counted once per namespace; on * it bounds each namespace"},
	{Name: KeyAllowScratch, Values: "true|false", Default: "false", Check: oneOf("true", "false"),
		Doc: "true: with require-golden-base, an image built on no base found (FROM scratch) is accepted too"},
	{Name: KeyImmutableTags, Values: "GLOB,…", Default: "", Check: checkTagGlobs,
		Doc: "tags matching a glob (1.*, v*, release-?) cannot be moved or deleted once pushed; pushing the same image again is accepted"},
	{Name: KeyTagHistory, Values: "DURATION", Default: "14d", Check: checkKeep,
		Doc: "how long tag moves and deletes are kept for rollback (14d, 36h); garbage collection keeps the images they name as long"},
	{Name: KeyRetention, Values: retention.Syntax, Default: "", Check: checkRetention,
		Doc: "keep rules (AND inside a rule, OR across rules; a tag no rule keeps is deleted by the scheduled run), e.g. \"last=10; semver-minors=3 semver-patches=1; untagged=14d\""},
}

// PolicyKeys lists the keys policies may set, in name order.
func PolicyKeys() []PolicyKey {
	out := slices.Clone(policyKeys)
	for i := range out {
		out[i].Choices = slices.Clone(out[i].Choices)
	}
	slices.SortFunc(out, func(a, b PolicyKey) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func policyKey(name string) (PolicyKey, bool) {
	for _, k := range policyKeys {
		if k.Name == name {
			return k, true
		}
	}
	return PolicyKey{}, false
}

// oneOf checks that a value is one of a fixed few.
func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("want %s", strings.Join(values, " or "))
		}
		return nil
	}
}

// ValidatePattern checks a policy pattern: a repository name, NAME/* or *.
func ValidatePattern(pattern string) error {
	name := pattern
	if pattern == "*" {
		return nil
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		name = prefix
	}
	if strings.Contains(name, "*") || !validName(name) || len(name) > MaxNameLength {
		return Errorf(ErrPolicyInvalid, "pattern %q: want a repository (gallery/ui), a namespace glob (golden/*) or *", pattern)
	}
	return nil
}

// PatternNamespace is the namespace a pattern belongs to (its first path
// segment), "" for a single-segment repository and for *: whoever owns
// that namespace may change the pattern's policies.
func PatternNamespace(pattern string) string {
	name, glob := strings.CutSuffix(pattern, "/*")
	ns, _, nested := strings.Cut(name, "/")
	if glob || nested {
		return ns
	}
	return ""
}

// patternsFor lists the patterns that apply to repo, most specific first:
// a/b/c, a/b/*, a/*, *.
func patternsFor(repo string) []string {
	out := []string{repo}
	for i := len(repo) - 1; i > 0; i-- {
		if repo[i] == '/' {
			out = append(out, repo[:i]+"/*")
		}
	}
	return append(out, "*")
}

// Setting is the value of one key in effect for a repository.
type Setting struct {
	Key   string
	Value string
	// Pattern is where the value comes from, "" for the key's default.
	Pattern string
	SetBy   string
	SetAt   time.Time
}

// Policies reads and changes the policies. Pushes read them, so the
// whole set is cached in memory and reloaded when the store's version
// counter has moved: one point read per push (memoised between commits
// on SQLite), and a change made by any process, another replica or the
// offline CLI, applies from the next push on.
type Policies struct {
	store metadata.PolicyStore
	log   *slog.Logger
	cache atomic.Pointer[policySnapshot]
}

// policySnapshot is every policy as of one version.
type policySnapshot struct {
	version int64
	byKey   map[string]map[string]metadata.Policy // pattern → key → policy
}

// NewPolicies returns the policies kept in store.
func NewPolicies(store metadata.PolicyStore, log *slog.Logger) *Policies {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Policies{store: store, log: log}
}

// Set validates and records values (key → value) on pattern, all or
// none, as set by the request's actor.
func (p *Policies) Set(ctx context.Context, pattern string, values map[string]string) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	if len(values) == 0 {
		return Errorf(ErrPolicyInvalid, "nothing to set: give KEY=VALUE")
	}
	ps := make([]metadata.Policy, 0, len(values))
	for key, value := range values {
		k, ok := policyKey(key)
		if !ok {
			return Errorf(ErrPolicyInvalid, "unknown policy key %q; known keys: %s", key, knownKeys())
		}
		if err := k.Check(value); err != nil {
			return Errorf(ErrPolicyInvalid, "%s=%q: %v", key, value, err)
		}
		if k.CheckPattern != nil {
			if err := k.CheckPattern(pattern); err != nil {
				return Errorf(ErrPolicyInvalid, "%s: %v", key, err)
			}
		}
		ps = append(ps, metadata.Policy{Pattern: pattern, Key: key, Value: value, SetBy: Actor(ctx)})
	}
	slices.SortFunc(ps, func(a, b metadata.Policy) int { return strings.Compare(a.Key, b.Key) })
	if err := p.store.SetPolicies(ctx, ps); err != nil {
		return err
	}
	for _, x := range ps {
		p.log.InfoContext(ctx, "policy set", "user", Actor(ctx), "pattern", pattern, "key", x.Key, "value", x.Value)
	}
	return nil
}

// Remove removes pattern's value for key, so that a broader pattern's or
// the default applies again.
func (p *Policies) Remove(ctx context.Context, pattern, key string) error {
	if err := ValidatePattern(pattern); err != nil {
		return err
	}
	err := p.store.DeletePolicy(ctx, pattern, key)
	if errors.Is(err, metadata.ErrNotFound) {
		return Errorf(ErrPolicyUnknown, "%s has no %s policy", pattern, key)
	}
	if err != nil {
		return err
	}
	p.log.InfoContext(ctx, "policy removed", "user", Actor(ctx), "pattern", pattern, "key", key)
	return nil
}

// List lists the policies set on pattern, or all of them for "".
func (p *Policies) List(ctx context.Context, pattern string) ([]metadata.Policy, error) {
	if pattern != "" {
		if err := ValidatePattern(pattern); err != nil {
			return nil, err
		}
	}
	return p.store.ListPolicies(ctx, pattern)
}

// Effective lists, for every known key, the value in effect for the
// repositories pattern names (for a glob: what it inherits from broader
// globs and sets itself), in key order.
func (p *Policies) Effective(ctx context.Context, pattern string) ([]Setting, error) {
	if err := ValidatePattern(pattern); err != nil {
		return nil, err
	}
	snap, err := p.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	chain := patternsFor(pattern)
	if name, glob := strings.CutSuffix(pattern, "/*"); glob {
		// A glob is not itself a repository: it inherits from the globs
		// above its prefix.
		chain = append([]string{pattern}, patternsFor(name)[1:]...)
	} else if pattern == "*" {
		chain = []string{"*"}
	}
	var out []Setting
	for _, k := range PolicyKeys() {
		out = append(out, snap.lookup(chain, k))
	}
	return out, nil
}

// Value returns the value of key in effect for repository repo: what the
// push path asks.
func (p *Policies) Value(ctx context.Context, repo, key string) (string, error) {
	set, err := p.Setting(ctx, repo, key)
	return set.Value, err
}

// Setting returns the value of key in effect for repository repo and the
// pattern it comes from.
func (p *Policies) Setting(ctx context.Context, repo, key string) (Setting, error) {
	return p.settingOn(ctx, patternsFor(repo), key)
}

// settingOn returns the value of key set by the first pattern of chain
// that sets it, or the key's default.
func (p *Policies) settingOn(ctx context.Context, chain []string, key string) (Setting, error) {
	k, ok := policyKey(key)
	if !ok {
		return Setting{}, fmt.Errorf("policy key %q is not declared", key)
	}
	snap, err := p.snapshot(ctx)
	if err != nil {
		return Setting{}, err
	}
	if len(snap.byKey) == 0 {
		return Setting{Key: key, Value: k.Default}, nil
	}
	return snap.lookup(chain, k), nil
}

// Settings returns the values of keys in effect for repository repo,
// read from one snapshot (one version read for them all).
func (p *Policies) Settings(ctx context.Context, repo string, keys ...string) ([]Setting, error) {
	_, out, err := p.settingsAt(ctx, repo, keys...)
	return out, err
}

// settingsAt is Settings with the policy version they were read at.
func (p *Policies) settingsAt(ctx context.Context, repo string, keys ...string) (int64, []Setting, error) {
	snap, err := p.snapshot(ctx)
	if err != nil {
		return 0, nil, err
	}
	out := make([]Setting, len(keys))
	for i, key := range keys {
		k, ok := policyKey(key)
		if !ok {
			return 0, nil, fmt.Errorf("policy key %q is not declared", key)
		}
		out[i] = snap.lookup(patternsFor(repo), k)
	}
	return snap.version, out, nil
}

// version is the policy version the cache holds, reloading it if moved.
func (p *Policies) version(ctx context.Context) (int64, error) {
	snap, err := p.snapshot(ctx)
	if err != nil {
		return 0, err
	}
	return snap.version, nil
}

func (s *policySnapshot) lookup(chain []string, k PolicyKey) Setting {
	for _, pat := range chain {
		if pol, ok := s.byKey[pat][k.Name]; ok {
			return Setting{Key: k.Name, Value: pol.Value, Pattern: pat, SetBy: pol.SetBy, SetAt: pol.SetAt}
		}
	}
	return Setting{Key: k.Name, Value: k.Default}
}

// snapshot returns the cached policies, reloading them if the store's
// version moved. The version is read before the policies: a change
// between the two reads is then loaded early and labelled old, which
// costs one more reload, never a stale answer.
func (p *Policies) snapshot(ctx context.Context) (*policySnapshot, error) {
	if pin, ok := ctx.Value(pinnedPolicies{}).(pinnedPolicies); ok && pin.p == p {
		return pin.snap, nil
	}
	v, err := p.store.PolicyVersion(ctx)
	if err != nil {
		return nil, err
	}
	if s := p.cache.Load(); s != nil && s.version == v {
		return s, nil
	}
	all, err := p.store.ListPolicies(ctx, "")
	if err != nil {
		return nil, err
	}
	s := &policySnapshot{version: v, byKey: map[string]map[string]metadata.Policy{}}
	for _, pol := range all {
		if s.byKey[pol.Pattern] == nil {
			s.byKey[pol.Pattern] = map[string]metadata.Policy{}
		}
		s.byKey[pol.Pattern][pol.Key] = pol
	}
	p.cache.Store(s)
	return s, nil
}

func knownKeys() string {
	var names []string
	for _, k := range PolicyKeys() {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// pinnedPolicies carries one snapshot through a request (pin).
type pinnedPolicies struct {
	p    *Policies
	snap *policySnapshot
}

// pin returns ctx carrying the policies as they are now, which every
// lookup through ctx then answers from: a manifest push asks several
// (tag rules, quota, golden, the push gate) and so reads the version
// once, not once each. A change made during the request applies from the
// next one, as if it had come a moment later.
func (p *Policies) pin(ctx context.Context) (context.Context, error) {
	snap, err := p.snapshot(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, pinnedPolicies{}, pinnedPolicies{p, snap}), nil
}
