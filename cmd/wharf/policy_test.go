package main

import (
	"regexp"
	"strings"
	"testing"
)

// offline runs wharf's offline commands on data directory dir, failing
// the test if one fails.
func offline(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, errOut, err := runRootIn(t.Context(), "", append(args, "--data-dir", dir)...)
		if err != nil {
			t.Fatalf("wharf %v: %v\n%s%s", args, err, out, errOut)
		}
		return out
	}
}

// TestPolicyCommands sets, lists and removes policies offline on a data
// directory, and refuses unknown keys, bad values and bad patterns with a
// message that says what to fix.
func TestPolicyCommands(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	run := offline(t, dir)
	fails := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := runRootIn(ctx, "", append(args, "--data-dir", dir)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("wharf %v: err = %v (%s%s), want one mentioning %q", args, err, out, errOut, want)
		}
	}

	if out := run("policy", "set", "golden/*", "floating-tags=semver"); out != "golden/*: floating-tags=semver\n" {
		t.Errorf("policy set printed %q", out)
	}
	run("policy", "set", "golden/legacy", "floating-tags=off")
	fails(`unknown policy key "floating"; known keys: allow-scratch, floating-tags, `, "policy", "set", "golden/*", "floating=semver")
	fails(`floating-tags="yes": want semver or off`, "policy", "set", "golden/*", "floating-tags=yes")
	fails(`pattern "golden/*/x"`, "policy", "set", "golden/*/x", "floating-tags=off")
	fails("want KEY=VALUE", "policy", "set", "golden/*", "floating-tags")

	all := run("policy", "ls")
	if !regexp.MustCompile(`(?m)^golden/\*\s+floating-tags\s+semver\s+cli\s+\d{4}-`).MatchString(all) ||
		!regexp.MustCompile(`(?m)^golden/legacy\s+floating-tags\s+off\s+cli\s`).MatchString(all) {
		t.Errorf("policy ls:\n%s", all)
	}
	if out := run("policy", "ls", "golden/base"); !regexp.MustCompile(`(?m)^floating-tags\s+semver\s+golden/\*\s+cli\s`).MatchString(out) {
		t.Errorf("policy ls golden/base:\n%s", out)
	}
	if out := run("policy", "ls", "golden/legacy"); !regexp.MustCompile(`(?m)^floating-tags\s+off\s+golden/legacy\s`).MatchString(out) {
		t.Errorf("policy ls golden/legacy:\n%s", out)
	}

	if out := run("policy", "rm", "golden/legacy", "floating-tags"); out != "golden/legacy: floating-tags removed\n" {
		t.Errorf("policy rm printed %q", out)
	}
	fails("golden/legacy has no floating-tags policy", "policy", "rm", "golden/legacy", "floating-tags")
	if out := run("policy", "ls", "golden/legacy"); !regexp.MustCompile(`(?m)^floating-tags\s+semver\s+golden/\*\s`).MatchString(out) {
		t.Errorf("after rm, policy ls golden/legacy:\n%s", out)
	}
	if out := run("policy", "ls", "other/app"); !regexp.MustCompile(`(?m)^floating-tags\s+off\s+\(default\)`).MatchString(out) {
		t.Errorf("policy ls other/app:\n%s", out)
	}
}
