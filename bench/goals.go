package main

import (
	"fmt"
	"strings"
)

// The targets, one per kind of row. A goal is met when all of its
// checks pass; a row whose figures are missing does not meet it.

// check judges one row; why says what it found (shown when it fails).
type check func(r *rowResult, res *Results) (ok bool, why string)

type goal struct {
	Text   string
	Checks []check
}

func (g *goal) eval(r *rowResult, res *Results) (bool, string) {
	ok := true
	var whys []string
	for _, c := range g.Checks {
		good, why := c(r, res)
		if !good {
			ok = false
			whys = append(whys, why)
		}
	}
	return ok, strings.Join(whys, "; ")
}

func ratioAtLeast(x float64) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Ratio == nil {
			return false, "no ratio"
		}
		return *r.Ratio >= x, fmt.Sprintf("%.2f× reference, want ≥ %.2g×", *r.Ratio, x)
	}
}

func ratioAbove(x float64) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Ratio == nil {
			return false, "no ratio"
		}
		return *r.Ratio > x, fmt.Sprintf("%.2f×, want > %.2g×", *r.Ratio, x)
	}
}

func ratioBelow(x float64, inclusive bool) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Ratio == nil {
			return false, "no ratio"
		}
		ok := *r.Ratio < x || inclusive && *r.Ratio == x
		return ok, fmt.Sprintf("%.3g× reference, want ≤ %.2g×", *r.Ratio, x)
	}
}

func fractionAtLeast(x float64) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Fraction == nil {
			return false, "no limit measured"
		}
		return *r.Fraction >= x, fmt.Sprintf("%.0f%% of limit, want ≥ %.0f%%", *r.Fraction*100, x*100)
	}
}

func wharfAtLeast(v float64, unit string) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Wharf == nil {
			return false, "no figure"
		}
		return r.Wharf.Median >= v, fmt.Sprintf("%.0f %s, want ≥ %.0f %s", r.Wharf.Median, unit, v, unit)
	}
}

func wharfAtMost(v float64, unit string) check {
	return func(r *rowResult, _ *Results) (bool, string) {
		if r.Wharf == nil {
			return false, "no figure"
		}
		return r.Wharf.Median <= v, fmt.Sprintf("%.3g %s, want ≤ %.3g %s", r.Wharf.Median, unit, v, unit)
	}
}

// flatRSS compares wharf's peak RSS for this (the largest) push with the
// smallest push's.
func flatRSS(slack float64) check {
	return func(r *rowResult, res *Results) (bool, string) {
		var first *rowResult
		for i := range res.Rows {
			if res.Rows[i].Metric == metricRSS && res.Rows[i].Wharf != nil {
				first = &res.Rows[i]
				break
			}
		}
		if first == nil || r.Wharf == nil {
			return false, "no figures"
		}
		grow := r.Wharf.Median - first.Wharf.Median
		return grow <= slack, fmt.Sprintf("grew %.0f MiB from the smallest push, want ≤ %.0f MiB", grow, slack)
	}
}

var (
	goalPush = &goal{"≥ 1.5× reference and ≥ 85% of the storing null registry",
		[]check{ratioAtLeast(1.5), fractionAtLeast(0.85)}}
	goalPull = &goal{"≥ reference and ≥ 90% of loopback GET",
		[]check{ratioAtLeast(1), fractionAtLeast(0.9)}}
	// Issue 11: manifest GET and HEAD by tag, with the access log and
	// metrics on, at 90% of a bare handler serving the same bytes.
	goalRate = &goal{"≥ 4× reference and ≥ 90% of bare handler",
		[]check{ratioAtLeast(4), fractionAtLeast(0.9)}}
	goalLowerP99 = &goal{"< reference", []check{ratioBelow(1, false)}}
	goalSmall    = &goal{"≥ 3× reference", []check{ratioAtLeast(3)}}
	goalList     = &goal{"≤ 0.1× reference (10× faster)", []check{ratioBelow(0.1, true)}}
	goalClient   = &goal{"wharf's client ahead (> 1×)", []check{ratioAbove(1)}}
	goalRSS      = &goal{"wharf ≤ 64 MiB", []check{wharfAtMost(64, "MiB")}}
	// The shared-storage section's targets (issue 12).
	goalSharedPush = &goal{"≥ 1.5× reference", []check{ratioAtLeast(1.5)}}
	goalSharedRate = &goal{"≥ 4× reference and ≥ 50% of wharf on SQLite",
		[]check{ratioAtLeast(4), fractionAtLeast(0.5)}}
	goalSharedList = &goal{"≤ 0.01× reference (100× faster)", []check{ratioBelow(0.01, true)}}
	// One part is what each writing upload holds in memory.
	goalSharedRSS = &goal{fmt.Sprintf("wharf ≤ 64 MiB + one %d MiB part", sharedPart>>20),
		[]check{wharfAtMost(64+sharedPart>>20, "MiB")}}
	// Garbage collection (issue 14): pushes and pulls slowed by at most 20%.
	goalGC      = &goal{"≤ 0.1× reference (10× faster)", []check{ratioBelow(0.1, true)}}
	goalGCLoad  = &goal{"≥ 80% of the rate without a collection", []check{wharfAtLeast(80, "%")}}
	goalRSSFlat = &goal{"wharf ≤ 64 MiB and ≤ smallest push + 16 MiB",
		[]check{wharfAtMost(64, "MiB"), flatRSS(16)}}
)
