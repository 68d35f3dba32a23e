//go:build e2e

package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	conformanceTimeout = 5 * time.Minute
	maxFailuresShown   = 40  // failing testcases printed in full
	messageLimit       = 600 // bytes of each failure message shown
	exchangeLimit      = 2000
)

// TestConformance runs the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance) against a real
// wharf, with every optional API and data set switched on. Any failure,
// error or skip fails the test.
func TestConformance(t *testing.T) {
	bin := requireTool(t, "conformance")
	for _, tc := range []struct {
		name       string
		serverArgs []string
		sparse     bool
		auth       bool
	}{
		{name: "default"},
		{name: "sparse-manifests", serverArgs: []string{"--sparse-manifests"}, sparse: true},
		{name: "auth", auth: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *wharfServer
			var login []string
			if tc.auth {
				// Every request goes through docker's token flow with a user
				// who owns the namespaces the suite pushes to.
				srv = startWharfAuth(t, freeLoopbackAddr(t))
				addUser(t, srv, "myorg", "conformance-password")
				// Anonymous mounts (no from=) stay on: with auth, wharf mounts
				// from a repository the caller may pull, as here.
				login = []string{"OCI_USERNAME=myorg", "OCI_PASSWORD=conformance-password"}
			} else {
				srv = startWharf(t, tc.serverArgs...)
			}
			runConformance(t, bin, srv.Addr, tc.sparse, login...)
		})
	}
}

// conformanceEnv is the suite's configuration. Names and meanings are in
// the suite's README (config.go has the full list); everything optional is
// switched on, so that a skip means the server lacks something.
func conformanceEnv(registry, resultsDir string, sparse bool) []string {
	env := map[string]string{
		"OCI_REGISTRY":    registry,
		"OCI_TLS":         "disabled",
		"OCI_REPO1":       "myorg/myrepo",
		"OCI_REPO2":       "myorg/crossmount",
		"OCI_RESULTS_DIR": resultsDir,
		"OCI_VERSION":     "1.1",
		"OCI_LOG":         "warn",

		"OCI_API_PING":                    "true",
		"OCI_API_PULL":                    "true",
		"OCI_API_PUSH":                    "true",
		"OCI_API_BLOBS_ATOMIC":            "true",
		"OCI_API_BLOBS_DELETE":            "true",
		"OCI_API_BLOBS_DIGEST_HEADER":     "true",
		"OCI_API_BLOBS_MOUNT_ANONYMOUS":   "true",
		"OCI_API_BLOBS_UPLOAD_CANCEL":     "true",
		"OCI_API_MANIFESTS_ATOMIC":        "true",
		"OCI_API_MANIFESTS_DELETE":        "true",
		"OCI_API_MANIFESTS_DIGEST_HEADER": "true",
		"OCI_API_MANIFESTS_TAG_PARAM":     "true",
		"OCI_API_TAGS_ATOMIC":             "true",
		"OCI_API_TAGS_DELETE":             "true",
		"OCI_API_TAGS_LIST":               "true",
		"OCI_API_REFERRER":                "true",

		"OCI_DATA_IMAGE":            "true",
		"OCI_DATA_INDEX":            "true",
		"OCI_DATA_INDEX_LIST":       "true",
		"OCI_DATA_SPARSE":           fmt.Sprint(sparse),
		"OCI_DATA_ARTIFACT":         "true",
		"OCI_DATA_SUBJECT":          "true",
		"OCI_DATA_SUBJECT_MISSING":  "true",
		"OCI_DATA_ARTIFACT_LIST":    "true",
		"OCI_DATA_SUBJECT_LIST":     "true",
		"OCI_DATA_DATA_FIELD":       "true",
		"OCI_DATA_NONDISTRIBUTABLE": "true",
		"OCI_DATA_CUSTOM_FIELDS":    "true",
		"OCI_DATA_NO_LAYERS":        "true",
		"OCI_DATA_EMPTY_BLOB":       "true",
		"OCI_DATA_SHA512":           "true",
	}
	// Start from a clean slate: no OCI_* settings from the caller's shell,
	// except the two that help when debugging a failure.
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OCI_") &&
			!strings.HasPrefix(kv, "OCI_FILTER_TEST=") && !strings.HasPrefix(kv, "OCI_LOG=") {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		if k == "OCI_LOG" && os.Getenv("OCI_LOG") != "" {
			continue
		}
		out = append(out, k+"="+v)
	}
	return out
}

// runConformance runs the suite against the registry at host:port with
// extraEnv added (the login); every testcase must run and pass.
func runConformance(t *testing.T, bin, registry string, sparse bool, extraEnv ...string) {
	t.Helper()
	work := t.TempDir() // also the working dir, so no stray oci-conformance.yaml is read
	resultsDir := filepath.Join(work, "results")
	stdoutPath := filepath.Join(work, "conformance.stdout")
	stderrPath := filepath.Join(work, "conformance.stderr")
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()

	ctx, cancel := context.WithTimeout(t.Context(), conformanceTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = work
	cmd.Env = append(conformanceEnv(registry, resultsDir, sparse), extraEnv...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("conformance against %s finished in %s (exit: %v)", registry, time.Since(start).Round(time.Millisecond), runErr)
	if ctx.Err() != nil {
		t.Fatalf("conformance timed out after %s\n--- stderr ---\n%s", conformanceTimeout, tailFile(stderrPath, 4000))
	}

	junitPath := filepath.Join(resultsDir, "junit.xml")
	report, err := readJUnit(junitPath)
	if err != nil {
		t.Fatalf("no usable junit report (%v); conformance exit: %v\n--- stdout ---\n%s\n--- stderr ---\n%s",
			err, runErr, tailFile(stdoutPath, 4000), tailFile(stderrPath, 4000))
	}

	sum := report.summary()
	line := fmt.Sprintf("conformance %s: %s", t.Name(), sum)
	t.Log(line)
	fmt.Println(line)
	switch {
	case sum.cases == 0:
		t.Errorf("conformance ran no tests\n--- stdout ---\n%s", tailFile(stdoutPath, 4000))
	case !sum.clean():
		bad := report.notPassed()
		t.Errorf("conformance did not pass cleanly; %d testcases did not pass:\n%s", len(bad), formatCases(bad))
	}
	if runErr != nil && !t.Failed() {
		t.Errorf("conformance exited with %v although its report shows no failure\n--- stderr ---\n%s", runErr, tailFile(stderrPath, 4000))
	}
	if t.Failed() {
		keepResults(t, work)
	}
}

// jUnit is the part of the suite's junit.xml that we read. The suite marks
// each testcase with a status attribute (passed, skipped, failure, error)
// and puts the error text in system-out and the HTTP exchange in
// system-err; the usual child elements are read too, should it add them.
type jUnit struct {
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Disabled int          `xml:"disabled,attr"`
	Suites   []jUnitSuite `xml:"testsuite"`
}

type jUnitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Disabled int         `xml:"disabled,attr"`
	Cases    []jUnitCase `xml:"testcase"`
}

type jUnitCase struct {
	Name      string        `xml:"name,attr"`
	Status    string        `xml:"status,attr"`
	Failure   *jUnitMessage `xml:"failure"`
	Error     *jUnitMessage `xml:"error"`
	Skipped   *jUnitMessage `xml:"skipped"`
	SystemOut string        `xml:"system-out"`
	SystemErr string        `xml:"system-err"`
}

type jUnitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// outcome is passed, failure, error or skipped.
func (c jUnitCase) outcome() string {
	switch {
	case c.Status != "":
		return c.Status
	case c.Error != nil:
		return "error"
	case c.Failure != nil:
		return "failure"
	case c.Skipped != nil:
		return "skipped"
	}
	return "passed"
}

// message is the reason the case did not pass, as the suite reported it.
func (c jUnitCase) message() string {
	var parts []string
	for _, m := range []*jUnitMessage{c.Failure, c.Error, c.Skipped} {
		if m != nil {
			parts = append(parts, strings.TrimSpace(m.Message+" "+m.Text))
		}
	}
	if s := strings.TrimSpace(c.SystemOut); s != "" {
		parts = append(parts, s)
	}
	if len(parts) == 0 && c.outcome() == "skipped" {
		// The suite writes "skipping test: reason" into the exchange log.
		if i := strings.Index(c.SystemErr, "skipping test:"); i >= 0 {
			parts = append(parts, c.SystemErr[i:])
		}
	}
	return strings.Join(parts, "; ")
}

func readJUnit(path string) (*jUnit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r jUnit
	if err := xml.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &r, nil
}

// jUnitSummary counts testcases by outcome, and keeps the suite's own
// counters, which count checks rather than testcases and so run higher.
type jUnitSummary struct {
	cases, passed, failed, errored, skipped int

	tests, failures, errors, skips, disabled int // the suite's counters
}

func (s jUnitSummary) String() string {
	return fmt.Sprintf("testcases=%d passed=%d failed=%d errors=%d skipped=%d "+
		"(suite counters: tests=%d failures=%d errors=%d skipped=%d disabled=%d)",
		s.cases, s.passed, s.failed, s.errored, s.skipped,
		s.tests, s.failures, s.errors, s.skips, s.disabled)
}

// clean reports whether every testcase ran and passed: none failed,
// errored, was skipped or was disabled.
func (s jUnitSummary) clean() bool {
	return s.cases > 0 && s.passed == s.cases &&
		s.failures+s.errors+s.skips+s.disabled == 0
}

func (r *jUnit) summary() jUnitSummary {
	s := jUnitSummary{
		tests: r.Tests, failures: r.Failures, errors: r.Errors, skips: r.Skipped, disabled: r.Disabled,
	}
	if len(r.Suites) > 0 {
		s.tests, s.failures, s.errors, s.skips, s.disabled = 0, 0, 0, 0, 0
	}
	for _, suite := range r.Suites {
		s.tests += suite.Tests
		s.failures += suite.Failures
		s.errors += suite.Errors
		s.skips += suite.Skipped
		s.disabled += suite.Disabled
		for _, c := range suite.Cases {
			s.cases++
			switch c.outcome() {
			case "passed":
				s.passed++
			case "failure":
				s.failed++
			case "skipped":
				s.skipped++
			default:
				s.errored++
			}
		}
	}
	return s
}

// notPassed lists the testcases whose outcome is not "passed".
func (r *jUnit) notPassed() []jUnitCase {
	var bad []jUnitCase
	for _, suite := range r.Suites {
		for _, c := range suite.Cases {
			if c.outcome() != "passed" {
				bad = append(bad, c)
			}
		}
	}
	return bad
}

// formatCases prints the failing testcases for a developer: name, outcome,
// message, and for the first few the HTTP exchange that went wrong.
func formatCases(cases []jUnitCase) string {
	var b strings.Builder
	for i, c := range cases {
		if i == maxFailuresShown {
			fmt.Fprintf(&b, "… and %d more (see report.html)\n", len(cases)-i)
			break
		}
		fmt.Fprintf(&b, "  [%s] %s\n", strings.ToUpper(c.outcome()), c.Name)
		if m := c.message(); m != "" {
			fmt.Fprintf(&b, "      %s\n", strings.ReplaceAll(truncate(m, messageLimit), "\n", "\n      "))
		}
		if i < 5 && strings.TrimSpace(c.SystemErr) != "" {
			fmt.Fprintf(&b, "      exchange (last %d bytes):\n      %s\n", exchangeLimit,
				strings.ReplaceAll(tail(c.SystemErr, exchangeLimit), "\n", "\n      "))
		}
	}
	return b.String()
}

// keepResults copies the suite's results (report.html, junit.xml, logs)
// out of the test's temp dir so a developer can read them after the run.
func keepResults(t *testing.T, work string) {
	t.Helper()
	dst, err := os.MkdirTemp("", "wharf-conformance-")
	if err != nil {
		t.Logf("keep results: %v", err)
		return
	}
	if err := os.CopyFS(dst, os.DirFS(work)); err != nil {
		t.Logf("keep results: %v", err)
		return
	}
	t.Logf("conformance results kept in %s (open results/report.html)", dst)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "[…]" + s[len(s)-n:]
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return tail(string(b), n)
}
