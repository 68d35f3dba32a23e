// Package retention decides which tags and untagged manifests of a
// repository a retention policy deletes. It is pure: the registry gives it
// the repository's tags and manifests as they stand and the time, and it
// answers keep or delete, with a reason, for each; nothing here reads a
// store or a clock, so a preview and a run that see the same repository
// decide the same.
//
// A policy (the value of the retention= policy key) is keep rules
// separated by ";", each a space-separated list of conditions, plus
// optionally an untagged=AGE clause:
//
//	last=10; match=v.* exclude=.*-rc.* semver-minors=3 semver-patches=1; untagged=14d
//
// A tag is kept if any rule keeps it (OR across rules), and a rule keeps
// a tag only if every one of its conditions holds (AND inside a rule).
// A tag no rule keeps is deleted. Without keep rules, no tag is deleted.
package retention

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Policy is a parsed retention= value.
type Policy struct {
	// Rules keep tags; a tag is deleted when none keeps it. With no rules
	// every tag stays.
	Rules []Rule
	// Untagged, when not zero, deletes manifests that no tag names and
	// that were pushed more than Untagged ago, unless a kept manifest
	// holds them (as an index's child or as a referrer of its subject).
	Untagged time.Duration
}

// Rule is one keep rule: every condition set must hold.
type Rule struct {
	// Text is the rule as written, for reasons.
	Text string
	// Match and Exclude select the tags the rule looks at; the ranks
	// (Last, the semver counts) are ranks among the selected tags.
	Match, Exclude *regexp.Regexp
	// Last keeps the Last most recently pushed selected tags.
	Last int
	// Pushed, Pulled and Used keep tags pushed, pulled, or either, within
	// that long.
	Pushed, Pulled, Used time.Duration
	// SemverMajors, SemverMinors and SemverPatches keep version tags in
	// the N highest major lines, in the N highest minor (MAJOR.MINOR)
	// lines, and among the N highest versions of their minor line; a tag
	// that is not a version fails them.
	SemverMajors, SemverMinors, SemverPatches int
}

// Syntax sums up the value, for help and error messages.
const Syntax = "RULE[; RULE…][; untagged=AGE], a RULE being CONDITION[ CONDITION…] among " +
	"last=N, pushed=AGE, pulled=AGE, used=AGE, match=REGEX, exclude=REGEX, " +
	"semver-majors=N, semver-minors=N, semver-patches=N (AGE: 30d, 2w, 12h)"

// Parse reads a retention= value; "" is the policy that deletes nothing.
func Parse(value string) (Policy, error) {
	var p Policy
	parts := strings.Split(value, ";")
	for i, text := range parts {
		text = strings.Join(strings.Fields(text), " ")
		if text == "" {
			// A trailing ; is harmless; an empty rule between two is a typo.
			if i == len(parts)-1 || strings.TrimSpace(value) == "" {
				continue
			}
			return Policy{}, fmt.Errorf("rule %d is empty; want %s", i+1, Syntax)
		}
		if age, ok := strings.CutPrefix(text, "untagged="); ok {
			if p.Untagged != 0 {
				return Policy{}, fmt.Errorf("untagged= is given twice")
			}
			d, err := parseAge(age)
			if err != nil {
				return Policy{}, fmt.Errorf("untagged=%s: %v", age, err)
			}
			p.Untagged = d
			continue
		}
		r, err := parseRule(text)
		if err != nil {
			return Policy{}, fmt.Errorf("rule %d (%s): %v", i+1, text, err)
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

func parseRule(text string) (Rule, error) {
	r := Rule{Text: text}
	seen := map[string]bool{}
	for _, cond := range strings.Fields(text) {
		key, val, ok := strings.Cut(cond, "=")
		if !ok || val == "" {
			return Rule{}, fmt.Errorf("%q: want KEY=VALUE", cond)
		}
		if seen[key] {
			return Rule{}, fmt.Errorf("%s= is given twice (conditions of one rule all hold; write two rules for either)", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "last":
			r.Last, err = parseCount(val)
		case "pushed":
			r.Pushed, err = parseAge(val)
		case "pulled":
			r.Pulled, err = parseAge(val)
		case "used":
			r.Used, err = parseAge(val)
		case "match":
			r.Match, err = parseRegex(val)
		case "exclude":
			r.Exclude, err = parseRegex(val)
		case "semver-majors":
			r.SemverMajors, err = parseCount(val)
		case "semver-minors":
			r.SemverMinors, err = parseCount(val)
		case "semver-patches":
			r.SemverPatches, err = parseCount(val)
		case "untagged":
			err = fmt.Errorf("untagged= is a clause of its own, not a condition of a keep rule: separate it with ;")
		default:
			err = fmt.Errorf("unknown condition; want last, pushed, pulled, used, match, exclude, semver-majors, semver-minors or semver-patches")
		}
		if err != nil {
			return Rule{}, fmt.Errorf("%s: %v", cond, err)
		}
	}
	return r, nil
}

func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1_000_000 {
		return 0, fmt.Errorf("want a whole number from 1")
	}
	return n, nil
}

// parseAge reads 30d, 2w or a Go duration (12h, 90m): days and weeks are
// what retention is counted in, and Go has no unit for them.
func parseAge(s string) (time.Duration, error) {
	var unit time.Duration
	switch {
	case strings.HasSuffix(s, "d"):
		unit = 24 * time.Hour
	case strings.HasSuffix(s, "w"):
		unit = 7 * 24 * time.Hour
	}
	var d time.Duration
	if unit != 0 {
		n, err := strconv.Atoi(s[:len(s)-1])
		if err != nil || n < 1 || n > 100_000 {
			return 0, fmt.Errorf("want an age such as 30d, 2w or 12h")
		}
		d = time.Duration(n) * unit
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, fmt.Errorf("want an age such as 30d, 2w or 12h")
		}
	}
	return d, nil
}

// parseRegex compiles a tag pattern that must match the whole tag, so
// that match=v1 does not also select v10 or dev-v1.
func parseRegex(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return nil, fmt.Errorf("not a regular expression: %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}
