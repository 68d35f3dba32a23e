package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Results is everything one run measured; it is written as JSON for tools
// and rendered as markdown for people.
type Results struct {
	Mode      string           `json:"mode"`
	Command   string           `json:"command"`
	Started   string           `json:"started"`
	Seconds   float64          `json:"seconds"`
	Machine   machine          `json:"machine"`
	Wharf     string           `json:"wharf"`
	Reference string           `json:"reference"`
	Settings  settings         `json:"settings"`
	Plan      plan             `json:"plan"`
	Rows      []rowResult      `json:"rows"`
	Limits    []limitResult    `json:"limits"`
	Scenarios []scenarioResult `json:"scenarios"`
	Profiles  []profileResult  `json:"profiles,omitempty"`
	Errors    []string         `json:"errors,omitempty"`
}

// settings says what each server ran with.
type settings struct {
	Wharf     string `json:"wharf"`
	Reference string `json:"reference"`
	Null      string `json:"null"`
	Client    string `json:"client"`
	// Shared is what the shared-storage section (shared-*) ran on.
	Shared string `json:"shared,omitempty"`
}

type rowResult struct {
	Scenario       string            `json:"scenario"`
	Metric         string            `json:"metric"`
	Title          string            `json:"title"`
	Unit           string            `json:"unit"`
	HigherIsBetter bool              `json:"higher_is_better"`
	Wharf          *summary          `json:"wharf"`
	Reference      *summary          `json:"reference"`
	Null           *summary          `json:"null,omitempty"`
	Ratio          *float64          `json:"ratio_wharf_over_reference"`
	LimitName      string            `json:"limit_name,omitempty"`
	Limit          *float64          `json:"limit,omitempty"`
	Fraction       *float64          `json:"wharf_fraction_of_limit,omitempty"`
	RefFraction    *float64          `json:"reference_fraction_of_limit,omitempty"`
	Goal           string            `json:"target,omitempty"`
	Met            *bool             `json:"met,omitempty"`
	Why            string            `json:"why,omitempty"`
	Errors         map[string]string `json:"errors,omitempty"`
}

type limitResult struct {
	Name  string   `json:"name"`
	Unit  string   `json:"unit"`
	Value *summary `json:"value"`
	How   string   `json:"how"`
}

type scenarioResult struct {
	ID           string             `json:"id"`
	Title        string             `json:"title"`
	Seconds      float64            `json:"seconds"`
	SetupSeconds map[string]float64 `json:"setup_seconds,omitempty"`
	// QuietWaitSeconds is how long the harness waited for other processes
	// to calm down before the measurements.
	QuietWaitSeconds float64 `json:"quiet_wait_seconds"`
	// Retries counts repetitions measured again because other processes
	// were busy during the first attempt.
	Retries    int                            `json:"retries"`
	PeakRSSMiB map[string]float64             `json:"peak_rss_mib"`
	Metrics    map[string]map[string]*summary `json:"metrics"`
	Errors     map[string]string              `json:"errors,omitempty"`
}

type profileResult struct {
	Scenario string `json:"scenario"`
	Seconds  int    `json:"seconds"`
	CPU      string `json:"cpu_profile"`
	Allocs   string `json:"alloc_profile"`
	CPUTop   string `json:"cpu_top"`
	AllocTop string `json:"alloc_top"`
}

// num formats a figure with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "–"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func cell(s *summary) string {
	if s == nil {
		return "–"
	}
	if len(s.Samples) < 2 {
		return num(s.Median)
	}
	return fmt.Sprintf("%s ±%.0f%%", num(s.Median), s.spread()*100)
}

func (r *rowResult) metCell() string {
	switch {
	case r.Met == nil:
		return ""
	case *r.Met:
		return "yes"
	}
	return "**no**: " + r.Why
}

func (r *rowResult) ratioCell() string {
	if r.Ratio == nil {
		return "–"
	}
	return num(*r.Ratio) + "×"
}

func pct(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%.0f%%", *p*100)
}

// markdown renders the results for people.
func (res *Results) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# wharf vs the reference registry (%s run)\n\n", res.Mode)
	w("`%s` — started %s, took %s. Each figure is the median of %d repetitions (± half the range, as a share of the median); "+
		"the servers are restarted for every scenario and measured alternately, their order rotating each repetition. "+
		"MB = 10^6 bytes; sizes are binary (MiB, GiB).\n\n",
		res.Command, res.Started, fmtDur(res.Seconds), res.Plan.Reps)
	m := res.Machine
	w("- **Machine**: %s, %d cores, %.1f GiB RAM, %s, data on %s, %s; load average at start %s.\n",
		m.CPU, m.Cores, m.MemGiB, m.Kernel, m.DataFS, m.Go, m.LoadAvg)
	w("- **wharf**: %s. **Reference**: %s.\n\n", res.Wharf, res.Reference)

	if res.Mode == "quick" {
		w("*Quick run*: small sizes and 1 s windows, so that CI keeps the harness working. The targets are the issue's, " +
			"shown for orientation only: a 256 MiB write+fsync, for one, mostly measures the page cache. The bar is the full run (`make bench`).\n\n")
	}
	w("| measurement | unit | wharf | reference | wharf/ref | limit | wharf/limit | target | met |\n")
	w("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, r := range res.Rows {
		lim := "–"
		if r.Limit != nil {
			lim = num(*r.Limit)
		}
		better := "↑"
		if !r.HigherIsBetter {
			better = "↓"
		}
		w("| %s | %s %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Title, r.Unit, better, cell(r.Wharf), cell(r.Reference),
			r.ratioCell(), lim, pct(r.Fraction), r.Goal, r.metCell())
	}
	w("\n↑ higher is better, ↓ lower is better. *wharf/ref* is the ratio of medians (below 1 is better for ↓ rows). " +
		"*limit* is the best this machine does for that row's work with no registry, measured in the same rotation as the servers " +
		"(push rows: the null registry hashing the body and storing it through wharf's own blob writer, with its writeback and fsyncs; " +
		"GET rows: a bare net/http server sending the bytes from memory; manifest rows: a bare net/http handler answering from memory with wharf's header lines; " +
		"the cold mirror row: the null registry as a mirror of the same upstream, sending, spooling and hashing each piece side by side; " +
		"details below); *wharf/limit* the share of it wharf reached.\n\n")

	for _, r := range res.Rows {
		if strings.HasPrefix(r.Scenario, "shared-") {
			w("*Rows 9* (shared storage: wharf on PostgreSQL + versitygw, the reference's s3 driver on the same versitygw): the *limit* of the push " +
				"and GET rows is versitygw itself driven by wharf's S3 client (minio-go) with no registry; the manifest row's is wharf on SQLite + " +
				"filesystem in the same scenario, a yardstick rather than a physical limit.\n\n")
			break
		}
	}
	for _, r := range res.Rows {
		if r.Scenario == "pull" && r.Fraction != nil && *r.Fraction > 1 {
			w("*wharf/limit* above 100%% on a GET row: wharf copies blobs from the page cache (read(2) and write(2) of 256 KiB), " +
				"the null registry from memory; a figure above the bare net/http server's is the run's spread (see ±), not a result.\n\n")
			break
		}
	}
	for _, r := range res.Rows {
		if strings.HasPrefix(r.Scenario, "push-") && r.Fraction != nil && *r.Fraction > 1 {
			w("%s", pushAboveLimit)
			break
		}
	}

	var missed []string
	for _, r := range res.Rows {
		if r.Met != nil && !*r.Met {
			missed = append(missed, fmt.Sprintf("- %s: %s", r.Title, r.Why))
		}
	}
	if len(missed) > 0 {
		w("## Targets missed\n\n%s\n\n", strings.Join(missed, "\n"))
	} else {
		w("## Targets missed\n\nNone.\n\n")
	}

	w("## Physical limits, same run\n\n| limit | unit | value | how |\n| --- | --- | ---: | --- |\n")
	for _, l := range res.Limits {
		w("| %s | %s | %s | %s |\n", l.Name, l.Unit, cell(l.Value), l.How)
	}

	w("\n## Per scenario: peak RSS, time, background load\n\n" +
		"Peak RSS is `VmHWM` from `/proc/PID/status` at the end of the scenario; every scenario starts fresh processes, so it is the scenario's own peak (set-up included). " +
		"*Background CPU* is what the rest of the machine (other processes, not the harness nor the server under test) used during a measurement, in cores, worst repetition; " +
		"*waited* is how long the harness waited for the machine to go quiet before measuring; *repeated* how many repetitions were measured again because the machine got busy during them.\n\n")
	w("| scenario | wharf RSS MiB | reference RSS MiB | took | background CPU | waited | repeated |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range res.Scenarios {
		bg := 0.0
		for _, m := range s.Metrics {
			if v := m["bg_cpu"]; v != nil {
				bg = max(bg, v.Max)
			}
		}
		w("| %s | %s | %s | %s | %.2f | %.0f s | %d |\n", s.Title, rssCell(s.PeakRSSMiB, nameWharf), rssCell(s.PeakRSSMiB, nameRef),
			fmtDur(s.Seconds), bg, s.QuietWaitSeconds, s.Retries)
	}

	res.generatorSection(w)

	if len(res.Profiles) > 0 {
		w("\n## Profiles of wharf where it missed a target\n\n" +
			"Taken from wharf's pprof listener (`--debug-addr`) while the harness replayed the scenario's workload after its measured repetitions.\n")
		for _, p := range res.Profiles {
			w("\n### %s (%ds)\n\nFiles: `%s`, `%s` (under the output directory).\n\n```\n%s\n```\n\n```\n%s\n```\n",
				p.Scenario, p.Seconds, p.CPU, p.Allocs, headLines(p.CPUTop, 22), headLines(p.AllocTop, 16))
		}
	}

	w("\n## What each server ran with\n\n- **wharf**: %s\n- **reference**: %s\n- **net/http (null registry)**: %s\n- **client**: %s\n",
		res.Settings.Wharf, res.Settings.Reference, res.Settings.Null, res.Settings.Client)
	for _, sc := range res.Scenarios {
		if strings.HasPrefix(sc.ID, "shared-") {
			w("- **shared-storage section** (rows 9): %s\n", res.Settings.Shared)
			break
		}
	}

	if len(res.Errors) > 0 {
		w("\n## Errors\n\n")
		for _, e := range res.Errors {
			w("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
	}
	return b.String()
}

func rssCell(m map[string]float64, name string) string {
	if v, ok := m[name]; ok {
		return fmt.Sprintf("%.0f", v)
	}
	return "–"
}

// generatorSection shows where the CPU went during the request-rate rows,
// and what two other generators measured on the same servers.
func (res *Results) generatorSection(w func(string, ...any)) {
	var sc *scenarioResult
	for i := range res.Scenarios {
		if res.Scenarios[i].ID == "manifest" {
			sc = &res.Scenarios[i]
		}
	}
	w("\n## Is the load generator the bottleneck?\n\n")
	w("The machine has few cores and the generator shares them with the server, so a generator that spends CPU per request " +
		"takes it from the server under test. The request-rate rows therefore use this program's raw HTTP/1.1 client " +
		"(one keep-alive connection per client, a pre-built request, only the status line and body framing parsed). " +
		"Checks: (1) the same generator against the null registry's bare handler reaches the *limit* column; " +
		"(2) CPU in cores (1.0 = one core busy) of generator and server during the measured window; " +
		"(3) after the repetitions, the same load from Go's net/http client and, when installed, from wrk (C, one thread, GET only: it cannot parse answers to HEAD).\n\n")
	if sc == nil {
		w("(the manifest scenario did not run)\n")
		return
	}
	g := func(name, k string) string {
		if s := sc.Metrics[name][k]; s != nil {
			return num(s.Median)
		}
		return "–"
	}
	med := func(name, k string) float64 {
		if s := sc.Metrics[name][k]; s != nil {
			return s.Median
		}
		return 0
	}
	w("| server | method | raw client req/s | its CPU | server CPU | net/http client req/s | its CPU | server CPU | wrk req/s | its CPU | server CPU |\n")
	w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, name := range []string{nameWharf, nameRef, nameNull} {
		if sc.Metrics[name] == nil {
			continue
		}
		for _, m := range []string{"GET", "HEAD"} {
			wrk := [3]string{"", "", ""}
			if m == "GET" {
				wrk = [3]string{g(name, "wrk_GET_rps"), g(name, "wrk_GET_gen_cpu"), g(name, "wrk_GET_srv_cpu")}
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, m,
				g(name, m+"_rps"), g(name, m+"_gen_cpu"), g(name, m+"_srv_cpu"),
				g(name, "nethttp_"+m+"_rps"), g(name, "nethttp_"+m+"_gen_cpu"), g(name, "nethttp_"+m+"_srv_cpu"),
				wrk[0], wrk[1], wrk[2])
		}
	}
	w("\n")
	for _, m := range []string{"GET", "HEAD"} {
		wh, bare := med(nameWharf, m+"_rps"), med(nameNull, m+"_rps")
		if wh > 0 && bare > 0 {
			w("- %s: the raw client drove the bare handler at %s req/s, %.1f× wharf's rate.\n", m, num(bare), bare/wh)
		}
	}
	for _, name := range []string{nameWharf, nameRef, nameNull} {
		raw := med(name, "GET_rps")
		if raw == 0 {
			continue
		}
		var alt []string
		if v := med(name, "nethttp_GET_rps"); v > 0 {
			alt = append(alt, fmt.Sprintf("net/http client %s (%+.0f%%)", num(v), (v/raw-1)*100))
		}
		if v := med(name, "wrk_GET_rps"); v > 0 {
			alt = append(alt, fmt.Sprintf("wrk %s (%+.0f%%)", num(v), (v/raw-1)*100))
		}
		if len(alt) > 0 {
			w("- %s, GET: raw client %s req/s; %s.\n", name, num(raw), strings.Join(alt, ", "))
		}
	}
	w("\nCPU in cores during each timed measurement of the other rows (median over repetitions; for the list and small-image rows, over the whole repetition):\n\n| scenario | server | generator CPU | server CPU |\n| --- | --- | ---: | ---: |\n")
	for _, s := range res.Scenarios {
		for _, name := range []string{nameWharf, nameRef, nameNull} {
			m := s.Metrics[name]
			if m == nil || m["gen_cpu"] == nil || s.ID == "manifest" {
				continue
			}
			w("| %s | %s | %s | %s |\n", s.ID, name, num(m["gen_cpu"].Median), num(m["srv_cpu"].Median))
		}
	}
}

func headLines(s string, n int) string {
	l := strings.Split(s, "\n")
	// Skip pprof's preamble (File:, Build ID:, Type:, Time:, ...) up to the
	// "Showing nodes" line, keep that and what follows.
	for i, line := range l {
		if strings.HasPrefix(line, "Showing nodes") {
			l = l[i:]
			break
		}
	}
	return strings.Join(l[:min(n, len(l))], "\n")
}

func fmtDur(secs float64) string {
	if secs < 120 {
		return fmt.Sprintf("%.0f s", secs)
	}
	return fmt.Sprintf("%.0f min %02.0f s", math.Floor(secs/60), math.Mod(secs, 60))
}

// write saves the markdown and the JSON as <name>.md and <name>.json.
func (res *Results) write(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(res.markdown()), 0o644)
}

// missed lists the rows that did not meet their target.
func (res *Results) missed() []string {
	var out []string
	for _, r := range res.Rows {
		if r.Met != nil && !*r.Met {
			out = append(out, r.Title)
		}
	}
	return slices.Clip(out)
}

// pushAboveLimit explains a push row above its ceiling, which should not
// happen: the ceiling does a registry's storage work and nothing else.
const pushAboveLimit = "*wharf/limit* above 100% on a push row: the ceiling (the null registry storing through wharf's own " +
	"blob writer, with nothing of a registry around it) does strictly less work than wharf, so a figure above it is the " +
	"spread of this run (see ±; a busy machine or the page cache), not a result.\n\n"
