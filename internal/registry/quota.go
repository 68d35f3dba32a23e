package registry

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/wharf/wharf/internal/metadata"
)

// KeyQuota is the key of a namespace's storage quota.
const KeyQuota = "quota"

// Quotas bound the storage of a namespace: the distinct blobs its
// repositories link (metadata.Usage), each counted once however many of
// them link it. A blob that two namespaces link counts in both, so a
// namespace's usage is what deleting it would give back at most, and the
// namespaces' usages may add up to more than the disk holds.
//
// A push is refused with DENIED as early as wharf can tell:
//   - a blob upload (POST, PATCH, monolithic PUT) when the namespace is
//     already at or over its quota, or when the upload's declared length
//     would take it over;
//   - otherwise a manifest whose namespace its blobs took over the quota.
//     The blobs stay linked until garbage collection prunes the links no
//     manifest references, which gives the space back.
//
// Deletes are never refused: they are how a namespace gets back under.

// size units, by their lower-case spelling.
var sizeUnits = map[string]struct {
	mult float64
	iec  bool
}{
	"": {1, false}, "b": {1, false},
	"k": {1e3, false}, "kb": {1e3, false}, "m": {1e6, false}, "mb": {1e6, false},
	"g": {1e9, false}, "gb": {1e9, false}, "t": {1e12, false}, "tb": {1e12, false},
	"kib": {1 << 10, true}, "mib": {1 << 20, true}, "gib": {1 << 30, true}, "tib": {1 << 40, true},
}

// ParseSize reads a size such as 10GB, 500MiB, 1.5TB or 1048576 (bytes).
// iec reports binary units (KiB, MiB…), in which sizes are then shown.
func ParseSize(s string) (n int64, iec bool, err error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	}
	u, ok := sizeUnits[unit]
	if !ok || num == "" {
		return 0, false, fmt.Errorf("%q is not a size: want a number and a unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f*u.mult >= math.MaxInt64 {
		return 0, false, fmt.Errorf("%q is not a size", s)
	}
	return int64(f * u.mult), u.iec, nil
}

// FormatSize shows n bytes with one decimal in the largest unit it
// fills: decimal units (GB), or binary ones (GiB) when iec.
func FormatSize(n int64, iec bool) string {
	base, units := 1000.0, []string{"B", "kB", "MB", "GB", "TB", "PB"}
	if iec {
		base, units = 1024.0, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	}
	f, i := float64(n), 0
	for f >= base && i < len(units)-1 {
		f /= base
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.Replace(fmt.Sprintf("%.1f %s", f, units[i]), ".0 ", " ", 1)
}

func checkQuota(v string) error {
	if v == "none" {
		return nil
	}
	n, _, err := ParseSize(v)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("a quota must be more than 0 bytes (none: no quota)")
	}
	return nil
}

// namespacePattern refuses a pattern that is not a whole namespace
// (NAME/*) or every namespace (*): a quota bounds a namespace, which a
// repository or a deeper glob cannot.
func namespacePattern(pattern string) error {
	if name, glob := strings.CutSuffix(pattern, "/*"); pattern == "*" || glob && !strings.Contains(name, "/") {
		return nil
	}
	return fmt.Errorf("set it on a namespace (alice/*) or on * (each namespace), not on %s", pattern)
}

// Usage is the storage used by a repository or a namespace, and the
// quota of the namespace.
type Usage struct {
	metadata.Usage
	// Namespace is the namespace the quota applies to.
	Namespace string
	// Quota is the namespace's quota in bytes, 0 for none; QuotaText is
	// the policy's value, Pattern where it is set.
	Quota     int64
	QuotaText string
	Pattern   string
	// IEC: the quota was given in binary units, and sizes show in them.
	IEC bool
}

// Percent is the share of the quota used, 0 without a quota.
func (u Usage) Percent() float64 {
	if u.Quota <= 0 {
		return 0
	}
	return 100 * float64(u.Bytes) / float64(u.Quota)
}

// Over reports whether the usage is above the quota.
func (u Usage) Over() bool { return u.Quota > 0 && u.Bytes > u.Quota }

// UsedText and QuotaSize format the sizes in the quota's units.
func (u Usage) UsedText() string { return FormatSize(u.Bytes, u.IEC) }

// QuotaSize is the quota formatted as the usage is.
func (u Usage) QuotaSize() string { return FormatSize(u.Quota, u.IEC) }

// Namespace returns the namespace of a repository: its first path
// segment, "" for a single-segment name.
func Namespace(repo string) string {
	ns, _, ok := strings.Cut(repo, "/")
	if !ok {
		return ""
	}
	return ns
}

// usageStore is the metadata store's usage, nil if it keeps none.
func (s *Service) usageStore() metadata.UsageStore {
	us, _ := s.meta.(metadata.UsageStore)
	return us
}

// quotaOf fills u's quota from the policy in effect for namespace ns.
func (s *Service) quotaOf(ctx context.Context, ns string, u *Usage) error {
	u.Namespace = ns
	if s.policies == nil {
		return nil
	}
	set, err := s.policies.namespaceSetting(ctx, ns, KeyQuota)
	if err != nil || set.Value == "none" {
		return err
	}
	n, iec, err := ParseSize(set.Value)
	if err != nil {
		return fmt.Errorf("quota of namespace %q: %w", ns, err)
	}
	u.Quota, u.QuotaText, u.Pattern, u.IEC = n, set.Value, set.Pattern, iec
	return nil
}

// NamespaceUsage returns the storage namespace ns uses and its quota.
func (s *Service) NamespaceUsage(ctx context.Context, ns string) (Usage, error) {
	u := Usage{Usage: metadata.Usage{Name: ns}}
	if us := s.usageStore(); us != nil {
		var err error
		if u.Usage, err = us.NamespaceUsage(ctx, ns); err != nil {
			return u, err
		}
	}
	return u, s.quotaOf(ctx, ns, &u)
}

// RepositoryUsage returns the storage repo uses and its namespace's quota.
func (s *Service) RepositoryUsage(ctx context.Context, repo string) (Usage, error) {
	u := Usage{Usage: metadata.Usage{Name: repo}}
	if us := s.usageStore(); us != nil {
		var err error
		if u.Usage, err = us.RepositoryUsage(ctx, repo); err != nil {
			return u, err
		}
	}
	return u, s.quotaOf(ctx, Namespace(repo), &u)
}

// RecountUsage recomputes every usage from the blob links, repairing
// drift, and returns how many it corrected.
func (s *Service) RecountUsage(ctx context.Context) (int, error) {
	us := s.usageStore()
	if us == nil {
		return 0, nil
	}
	n, err := us.RecountUsage(ctx)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.log.WarnContext(ctx, "usage recounted", "corrected", n)
	}
	return n, nil
}

// QuotaUsages lists the usage of every namespace that a policy gives a
// quota of its own (NAME/*), in name order: what /metrics reports. A
// quota set on * alone labels no namespace, so that the series stay as
// few as the quotas an administrator set.
func (s *Service) QuotaUsages(ctx context.Context) ([]Usage, error) {
	if s.policies == nil {
		return nil, nil
	}
	snap, err := s.policies.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	var out []Usage
	for _, pattern := range slices.Sorted(maps.Keys(snap.byKey)) {
		ns, glob := strings.CutSuffix(pattern, "/*")
		if _, ok := snap.byKey[pattern][KeyQuota]; !ok || !glob {
			continue
		}
		u, err := s.NamespaceUsage(ctx, ns)
		if err != nil {
			return nil, err
		}
		if u.Quota > 0 {
			out = append(out, u)
		}
	}
	return out, nil
}

// namespaceSetting returns the value of key in effect for namespace ns:
// set on ns/* or on *.
func (p *Policies) namespaceSetting(ctx context.Context, ns, key string) (Setting, error) {
	chain := []string{"*"}
	if ns != "" {
		chain = []string{ns + "/*", "*"}
	}
	return p.settingOn(ctx, chain, key)
}

func nsLabel(ns string) string {
	if ns == "" {
		return "the top-level namespace"
	}
	return "namespace " + ns
}

// enforceQuota refuses a push into repo that the namespace's quota does
// not allow. adding is what the request declares it will store (-1:
// unknown, 0: nothing yet), of blob d when the request names it (a blob
// the namespace holds already adds nothing); atManifest marks the
// manifest, which is refused only once the namespace is over, a blob
// already when it is full.
func (s *Service) enforceQuota(ctx context.Context, repo string, d digest.Digest, adding int64, atManifest bool) error {
	if s.policies == nil || s.usageStore() == nil {
		return nil
	}
	ns := Namespace(repo)
	var u Usage
	if err := s.quotaOf(ctx, ns, &u); err != nil || u.Quota == 0 {
		return err
	}
	used, err := s.usageStore().NamespaceUsage(ctx, ns)
	if err != nil {
		return err
	}
	u.Usage = used
	switch {
	case u.Bytes > u.Quota || !atManifest && u.Bytes == u.Quota:
		return Errorf(ErrDenied, "%s is over its %s quota: %s used", nsLabel(ns), u.QuotaSize(), u.UsedText()).
			withDetail(quotaDetail(u))
	case !atManifest && adding > 0 && u.Bytes+adding > u.Quota:
		if d != "" {
			held, err := s.usageStore().NamespaceHoldsBlob(ctx, ns, d)
			if err != nil || held {
				return err
			}
		}
		return Errorf(ErrDenied, "%s would be over its %s quota: %s used, and this upload is %s",
			nsLabel(ns), u.QuotaSize(), u.UsedText(), FormatSize(adding, u.IEC)).withDetail(quotaDetail(u))
	}
	return nil
}

func quotaDetail(u Usage) map[string]any {
	return map[string]any{"namespace": u.Namespace, "quota": u.Quota, "used": u.Bytes}
}

// declared is the size a blob upload will have at least: what the session
// holds plus the request's declared length (-1 when it declares none).
func declared(offset, length int64) int64 {
	if length < 0 {
		return -1
	}
	return offset + length
}
