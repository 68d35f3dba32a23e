// Package humantime words durations the way Docker Hub's pages do, for
// the UI and for the registry's own messages (staleness reasons).
package humantime

import (
	"strconv"
	"time"
)

// Ago says how long before now t was, in its largest whole unit: "1
// minute ago", "3 days ago", "2 years ago". Under a minute it says
// recent, which each caller words for its context ("just now" in a
// sentence, "less than a minute ago" in a column).
func Ago(now, t time.Time, recent string) string {
	const day = 24 * time.Hour
	d := now.Sub(t)
	unit := func(n time.Duration, name string) string {
		if n == 1 {
			return "1 " + name + " ago"
		}
		return strconv.FormatInt(int64(n), 10) + " " + name + "s ago"
	}
	switch {
	case d < time.Minute:
		return recent
	case d < time.Hour:
		return unit(d/time.Minute, "minute")
	case d < day:
		return unit(d/time.Hour, "hour")
	case d < 30*day:
		return unit(d/day, "day")
	case d < 365*day:
		return unit(d/(30*day), "month")
	}
	return unit(d/(365*day), "year")
}
