package web

import (
	"testing"
	"time"
)

// The units are humantime's (tested there); the page words the first
// minute and a missing time as Hub does.
func TestAgo_SaysItAsHubDoes(t *testing.T) {
	now := time.Now()
	for d, want := range map[time.Duration]string{
		10 * time.Second:   "less than a minute ago",
		3 * 24 * time.Hour: "3 days ago",
	} {
		if got := ago(now.Add(-d)); got != want {
			t.Errorf("ago(-%v) = %q, want %q", d, got, want)
		}
	}
	if got := ago(time.Time{}); got != "never" {
		t.Errorf("ago(zero) = %q, want never", got)
	}
}

func TestHumanSize_DecimalLikeDocker(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.00 kB", 5_240: "5.24 kB", 31_400_000: "31.40 MB", 2_000_000_000: "2.00 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
