package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// readmeCmd is the sub-command that copies the committed full run's table
// into the repository README, so that the README quotes the run whose
// results are committed, names its commit, and cannot drift from it
// (TestREADMEQuotesLatest fails when it does).
const readmeCmd = "readme"

// The README's quoted block lies between these markers.
const (
	readmeBegin = "<!-- bench:latest begin (make bench-readme copies this from bench/results/latest.md) -->\n"
	readmeEnd   = "<!-- bench:latest end -->\n"
)

// quoteLatest returns the block the README should hold for latest.md: its
// line naming the commits and its table of rows.
func quoteLatest(latest []byte) ([]byte, error) {
	var commit []byte
	var table [][]byte
	inTable := false
	for _, l := range bytes.SplitAfter(latest, []byte("\n")) {
		switch {
		case commit == nil && bytes.HasPrefix(l, []byte("- **wharf**: ")):
			commit = bytes.TrimPrefix(l, []byte("- "))
		case bytes.HasPrefix(l, []byte("| measurement |")) && table == nil:
			inTable = true
			table = append(table, l)
		case inTable && bytes.HasPrefix(l, []byte("|")):
			table = append(table, l)
		case inTable:
			inTable = false
		}
	}
	if commit == nil || len(table) < 3 {
		return nil, errors.New("latest.md has no '- **wharf**: commit …' line or no results table")
	}
	var b bytes.Buffer
	b.WriteString(readmeBegin)
	b.WriteString("From `bench/results/latest.md`, the last full run: ")
	b.Write(commit)
	b.WriteString("\n") // a table must follow a blank line
	for _, l := range table {
		b.Write(l)
	}
	b.WriteString(readmeEnd)
	return b.Bytes(), nil
}

// spliceReadme replaces the quoted block of readme with block.
func spliceReadme(readme, block []byte) ([]byte, error) {
	i := bytes.Index(readme, []byte(readmeBegin))
	j := bytes.Index(readme, []byte(readmeEnd))
	if i < 0 || j < i {
		return nil, fmt.Errorf("README has no %q … %q block", readmeBegin, readmeEnd)
	}
	out := append([]byte{}, readme[:i]...)
	out = append(out, block...)
	return append(out, readme[j+len(readmeEnd):]...), nil
}

// runReadme rewrites README.md in the module root from bench/results/latest.md.
func runReadme() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	latest, err := os.ReadFile(filepath.Join(root, "bench", "results", "latest.md"))
	if err != nil {
		return err
	}
	block, err := quoteLatest(latest)
	if err != nil {
		return err
	}
	path := filepath.Join(root, "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := spliceReadme(readme, block)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
