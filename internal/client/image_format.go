package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
)

// Output formatting shared by the local image commands, following the
// docker CLI's formatter: "table " templates go through a tabwriter with
// docker's settings (min width 10, padding 3) and get a header row.

// templateFuncs are the functions docker offers in --format templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
	"join":     strings.Join,
	"split":    strings.Split,
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"println":  func(args ...any) string { return fmt.Sprintln(args...) },
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": func(s string, n int) string { return string([]rune(s)[:min(n, len([]rune(s)))]) },
}

// parseFormat returns the template text and whether it is a table.
func parseFormat(format string) (string, bool) {
	table := strings.HasPrefix(format, "table")
	if table {
		format = strings.TrimPrefix(strings.TrimPrefix(format, "table"), " ")
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	return format, table
}

// renderRows executes format once per row (and once on header for a table)
// and writes the result to w.
func renderRows[T any](w io.Writer, format string, header T, rows []T) error {
	text, table := parseFormat(format)
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	var buf bytes.Buffer
	if table {
		if err := tmpl.Execute(&buf, header); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.WriteByte('\n')
	}
	for _, r := range rows {
		if err := tmpl.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.WriteByte('\n')
	}
	if !table {
		_, err := w.Write(buf.Bytes())
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	if _, err := tw.Write(buf.Bytes()); err != nil {
		return err
	}
	return tw.Flush()
}

// humanSize formats bytes as docker does (go-units HumanSizeWithPrecision
// with precision 3): decimal units, "7.8MB", "123MB", "1.23GB", "512B".
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	size := float64(n)
	i := 0
	for size >= 1000 && i < len(units)-1 {
		size /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", size, units[i])
}

// humanDuration is go-units' HumanDuration, which docker uses for "CREATED".
func humanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Hours() + 0.5); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// createdSince is docker's CREATED column: "3 days ago", "N/A" when unknown.
func createdSince(created, now time.Time) string {
	if created.Unix() <= 0 {
		return "N/A"
	}
	return humanDuration(now.Sub(created)) + " ago"
}

// shortID is docker's TruncateID: the first 12 hex digits without "sha256:".
func shortID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	return id[:min(12, len(id))]
}

// ellipsis shortens s to max runes, ending with "…", as docker's history does.
func ellipsis(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
