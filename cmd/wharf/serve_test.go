package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func runRoot(ctx context.Context, args ...string) (string, error) {
	cmd := NewRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestServeHelp_ListsSettings(t *testing.T) {
	out, err := runRoot(t.Context(), "serve", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--addr", "--data-dir", "--config", "--sparse-manifests", "WHARF_ADDR"} {
		if !strings.Contains(out, flag) {
			t.Errorf("serve --help does not mention %s", flag)
		}
	}
}

func TestServe_RejectsBadConfiguration(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--addr", "nonsense"},
		{"serve", "--log-level", "loud"},
		{"serve", "--config", "/does/not/exist.yaml"},
	} {
		_, err := runRoot(t.Context(), args...)
		if err == nil || !strings.Contains(err.Error(), "invalid configuration") {
			t.Errorf("%v: err = %v, want an invalid configuration error", args, err)
		}
	}
}

func TestServe_StopsCleanlyWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := runRoot(ctx, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("serve returned before it was stopped: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10s of cancel")
	}
}
