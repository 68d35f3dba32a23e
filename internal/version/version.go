// Package version reports which build of wharf is running, from the build
// information the Go toolchain stamps into every binary (module version,
// VCS revision and time, Go version), so no release step has to remember to
// pass -ldflags.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info describes one build.
type Info struct {
	// Version is the main module's version: a tag such as v1.2.3, a
	// pseudo-version derived from the commit, or "(devel)".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, "" if unknown.
	Commit string `json:"commit"`
	// CommitTime is the revision's commit time in RFC 3339, "" if unknown.
	CommitTime string `json:"commit_time,omitempty"`
	// Modified says the work tree had uncommitted changes at build time.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get reads the running binary's build information.
func Get() Info {
	info := Info{
		Version:   "(devel)",
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	return fromBuildInfo(bi, info)
}

func fromBuildInfo(bi *debug.BuildInfo, info Info) Info {
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitTime = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// ShortCommit is the first 12 characters of the commit, as git abbreviates.
func (i Info) ShortCommit() string {
	if len(i.Commit) > 12 {
		return i.Commit[:12]
	}
	return i.Commit
}

// String is the one-line form `wharf --version` prints.
func (i Info) String() string {
	commit := i.ShortCommit()
	if commit == "" {
		commit = "unknown"
	}
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("wharf %s (commit %s, %s, %s)", i.Version, commit, i.GoVersion, i.Platform)
}
