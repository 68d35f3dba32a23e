package humantime

import (
	"testing"
	"time"
)

func TestAgo_SaysItAsHubDoes(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second:     "recently",
		time.Minute:          "1 minute ago",
		59 * time.Minute:     "59 minutes ago",
		3 * time.Hour:        "3 hours ago",
		24 * time.Hour:       "1 day ago",
		3 * 24 * time.Hour:   "3 days ago",
		65 * 24 * time.Hour:  "2 months ago",
		800 * 24 * time.Hour: "2 years ago",
	} {
		if got := Ago(now, now.Add(-d), "recently"); got != want {
			t.Errorf("Ago(-%v) = %q, want %q", d, got, want)
		}
	}
}
