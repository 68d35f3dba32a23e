package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMEQuotesLatest: the README's benchmark table is the committed
// full run's, with its commit named. After a new full run, `make
// bench-readme` brings the README up to date.
func TestREADMEQuotesLatest(t *testing.T) {
	latest, err := os.ReadFile("results/latest.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := quoteLatest(latest)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, want) {
		t.Errorf("README.md does not quote bench/results/latest.md; run `make bench-readme`. Want the block:\n%s", want)
	}
	if !strings.Contains(string(want), "commit ") {
		t.Errorf("the quoted block names no commit:\n%s", want)
	}
}

func TestSpliceReadme(t *testing.T) {
	latest := []byte("# run\n\n- **Machine**: x\n- **wharf**: commit abc1234. **Reference**: v3.\n\n" +
		"| measurement | unit |\n| --- | --- |\n| 1. push | MB/s |\n\nafter\n")
	block, err := quoteLatest(latest)
	if err != nil {
		t.Fatal(err)
	}
	readme := []byte("intro\n" + readmeBegin + "old table\n" + readmeEnd + "outro\n")
	got, err := spliceReadme(readme, block)
	if err != nil {
		t.Fatal(err)
	}
	want := "intro\n" + readmeBegin +
		"From `bench/results/latest.md`, the last full run: **wharf**: commit abc1234. **Reference**: v3.\n\n" +
		"| measurement | unit |\n| --- | --- |\n| 1. push | MB/s |\n" + readmeEnd + "outro\n"
	if string(got) != want {
		t.Errorf("spliceReadme:\n%s\nwant:\n%s", got, want)
	}
	if _, err := spliceReadme([]byte("no markers\n"), block); err == nil {
		t.Error("spliceReadme of a README without markers: no error")
	}
}
