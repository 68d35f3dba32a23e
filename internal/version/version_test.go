package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo_ReadsVCSStamp(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "wharf", Version: "v0.0.0-20261205045853-1dd186b3f0aa"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1dd186b3f0aa8e2d2c1c2b8b5a0e2f9d7c6b5a41"},
			{Key: "vcs.time", Value: "2026-12-05T04:58:53Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	got := fromBuildInfo(bi, Info{Version: "(devel)", Platform: "linux/amd64"})
	if got.Commit != "1dd186b3f0aa8e2d2c1c2b8b5a0e2f9d7c6b5a41" || !got.Modified || got.CommitTime != "2026-12-05T04:58:53Z" {
		t.Fatalf("fromBuildInfo = %+v", got)
	}
	want := "wharf v0.0.0-20261205045853-1dd186b3f0aa (commit 1dd186b3f0aa-dirty, go1.26.8, linux/amd64)"
	if s := got.String(); s != want {
		t.Errorf("String() = %q, want %q", s, want)
	}
}

func TestFromBuildInfo_WithoutVCS(t *testing.T) {
	got := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.26.8"}, Info{Version: "(devel)", Platform: "linux/amd64"})
	if s := got.String(); !strings.Contains(s, "(devel)") || !strings.Contains(s, "commit unknown") {
		t.Errorf("String() = %q, want (devel) and commit unknown", s)
	}
}
