package client

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/wharf/wharf/internal/client/store"
)

// imageFilter is `image ls --filter` parsed as docker's daemon applies it:
// values of one key combine as docker combines them (reference and
// dangling OR'd, label AND'd, before/since narrowed to the tightest bound),
// and different keys are AND'd.
type imageFilter struct {
	references []string
	dangling   *bool
	labels     []string
	// before and since are exclusive bounds on the creation time; until is
	// inclusive. Zero means unset.
	before, since, until time.Time
}

// errFilterFormat is the docker CLI's message for a filter without "=".
const errFilterFormat = "bad format of filter (expected name=value)"

// parseImageFilter reads "key=value" filters. before= and since= name
// images, so they are looked up in st; until= is a timestamp or a
// duration before now.
func parseImageFilter(ctx context.Context, st *store.Store, filters []string, now time.Time) (imageFilter, error) {
	var f imageFilter
	byKey := map[string][]string{}
	var keys []string
	for _, arg := range filters {
		k, v, ok := strings.Cut(arg, "=")
		if !ok {
			return f, fmt.Errorf("invalid argument %q for \"-f, --filter\" flag: %s", arg, errFilterFormat)
		}
		// docker's CLI lower-cases the key and trims both parts.
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if _, seen := byKey[k]; !seen {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], v)
	}
	for _, k := range keys {
		vals := byKey[k]
		switch k {
		case "reference":
			f.references = vals
		case "label":
			f.labels = vals
		case "dangling":
			// docker accepts true/1 and false/0; both at once is invalid.
			isTrue := slices.Contains(vals, "true") || slices.Contains(vals, "1")
			isFalse := slices.Contains(vals, "false") || slices.Contains(vals, "0")
			if isTrue == isFalse || len(vals) != countBools(vals) {
				return f, fmt.Errorf("invalid filter 'dangling=%s'", fmt.Sprint(vals))
			}
			f.dangling = &isTrue
		case "before", "since":
			for _, v := range vals {
				created, err := imageCreated(ctx, st, v)
				if err != nil {
					return f, err
				}
				if k == "before" && (f.before.IsZero() || created.Before(f.before)) {
					f.before = created
				}
				if k == "since" && (f.since.IsZero() || created.After(f.since)) {
					f.since = created
				}
			}
		case "until":
			for _, v := range vals {
				t, err := parseTimestamp(v, now)
				if err != nil {
					return f, err
				}
				if f.until.IsZero() || t.Before(f.until) {
					f.until = t
				}
			}
		default:
			return f, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

func countBools(vals []string) int {
	n := 0
	for _, v := range vals {
		switch v {
		case "true", "1", "false", "0":
			n++
		}
	}
	return n
}

// imageCreated is the creation time of the image a before=/since= value names.
func imageCreated(ctx context.Context, st *store.Store, s string) (time.Time, error) {
	img, _, err := st.Image(ctx, s)
	if err != nil {
		return time.Time{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, err
	}
	return cf.Created.Time, nil
}

// parseTimestamp reads until= values as docker does: a Go duration ("10m",
// before now), RFC 3339 (with or without time zone), a date, or Unix
// seconds.
func parseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if sec, frac, _ := strings.Cut(v, "."); sec != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			ns := int64(0)
			if frac != "" {
				if n, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64); err == nil {
					ns = n
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid filter 'until=%s': not a timestamp or a duration", v)
}

// match reports whether an image ls entry passes the filter.
func (f imageFilter) match(e store.Entry) (bool, error) {
	if f.dangling != nil && *f.dangling != (e.Ref == nil && e.RepoDigest == "") {
		return false, nil
	}
	if !f.before.IsZero() && !e.Created.Before(f.before) {
		return false, nil
	}
	if !f.since.IsZero() && !e.Created.After(f.since) {
		return false, nil
	}
	if !f.until.IsZero() && e.Created.After(f.until) {
		return false, nil
	}
	for _, l := range f.labels {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := e.Labels[k]
		if !ok || (hasValue && got != v) {
			return false, nil
		}
	}
	if len(f.references) == 0 {
		return true, nil
	}
	named := e.Ref
	if named == nil && e.RepoDigest != "" {
		// docker matches an image known only by its digest by that name.
		named, _ = reference.ParseNormalizedNamed(e.RepoDigest)
	}
	if named == nil {
		return false, nil
	}
	for _, p := range f.references {
		m, err := reference.FamiliarMatch(p, named)
		if err != nil {
			return false, fmt.Errorf("invalid reference filter %q: %w", p, err)
		}
		if m {
			return true, nil
		}
	}
	return false, nil
}
