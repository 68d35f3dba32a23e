package main

import (
	"math"
	"slices"
	"time"
)

// summary is one figure over repetitions: its median and its spread.
type summary struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
}

func summarize(xs []float64) *summary {
	xs = slices.DeleteFunc(slices.Clone(xs), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var med float64
	if n := len(s); n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return &summary{Median: med, Min: s[0], Max: s[len(s)-1], Samples: xs}
}

func total(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

// spread is half the range as a fraction of the median: "±4%" means every
// repetition fell within 4% of the median.
func (s *summary) spread() float64 {
	if s == nil || s.Median == 0 {
		return math.NaN()
	}
	return (s.Max - s.Min) / 2 / math.Abs(s.Median)
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mbps is throughput in MB/s (10^6 bytes per second).
func mbps(bytes int64, d time.Duration) float64 {
	return float64(bytes) / d.Seconds() / 1e6
}
