// Command testsum reads `go test -json` on stdin and summarizes it for `make test`: the output of
// every failed test, the list of skipped tests with their reasons, and a closing line
// "N passed, N failed, N skipped". It exits 1 when a test failed, a test skipped, or a package
// failed to build, so CI can never go green by skipping. With -allow-skips (the only-Go tier,
// `make test-unit`) skips are listed but do not fail the run.
//
//	go test -json ./... | go run ./internal/testenv/cmd/testsum
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	ImportPath string // build events (Action build-output / build-fail)
	Test       string
	Output     string
}

type key struct{ pkg, test string }

// Summary is what a run produced.
type Summary struct {
	Passed, Failed, Skipped int
	Failures                []string // "pkg TestX" with its output
	Skips                   []string // "pkg TestX: reason"
	OptIn                   []string // skipped opt-in suites (testenv.OptIn): listed, never a failure
	BrokenPackages          []string // failed without a failing test (build error, TestMain exit, panic)
	Other                   string   // compiler output and lines that are not test events
}

// OK is true when every test ran and passed.
func (s Summary) OK() bool {
	return s.Failed == 0 && s.Skipped == 0 && len(s.BrokenPackages) == 0
}

// Summarize reads a `go test -json` stream. Compiler output and lines that are not JSON (for
// example "go: downloading") are kept in Other and printed only when something failed: a build
// failure also ends its package with a fail event, which is what counts.
func Summarize(r io.Reader, echo io.Writer) (Summary, error) {
	var s Summary
	out := map[key]*strings.Builder{}
	failedTests := map[string]bool{}
	var stray strings.Builder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			stray.WriteString(sc.Text() + "\n")
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "build-output":
			stray.WriteString(e.Output)
		case "output":
			if out[k] == nil {
				out[k] = &strings.Builder{}
			}
			out[k].WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				if e.Action == "fail" && !failedTests[e.Package] {
					s.BrokenPackages = append(s.BrokenPackages, e.Package+"\n"+text(out[k]))
				}
				if echo != nil && e.Action != "skip" {
					fmt.Fprintf(echo, "%s\t%s\n", e.Action, e.Package)
				}
				continue
			}
			switch e.Action {
			case "pass":
				s.Passed++
			case "fail":
				s.Failed++
				failedTests[e.Package] = true
				s.Failures = append(s.Failures, fmt.Sprintf("%s %s\n%s", e.Package, e.Test, text(out[k])))
			case "skip":
				reason := skipReason(text(out[k]))
				if strings.Contains(reason, testenv.OptInMarker) {
					s.OptIn = append(s.OptIn, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
					break
				}
				s.Skipped++
				s.Skips = append(s.Skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			}
			delete(out, k)
		}
	}
	s.Other = stray.String()
	return s, sc.Err()
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// skipReason is the message of t.Skip: the output lines after "--- SKIP", without file:line.
func skipReason(output string) string {
	var reasons []string
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- SKIP") {
			continue
		}
		reasons = append(reasons, l)
	}
	if len(reasons) == 0 {
		return "(no reason given)"
	}
	return strings.Join(reasons, " ")
}

// Print writes the report; the closing line is always last.
func (s Summary) Print(w io.Writer) {
	for _, f := range s.Failures {
		fmt.Fprintf(w, "\n--- FAIL %s", f)
	}
	for _, b := range s.BrokenPackages {
		fmt.Fprintf(w, "\n--- FAIL (package) %s", b)
	}
	if s.Other != "" && (s.Failed > 0 || len(s.BrokenPackages) > 0) {
		fmt.Fprintf(w, "\n--- other output (build errors):\n%s", s.Other)
	}
	if len(s.Skips) > 0 {
		sort.Strings(s.Skips)
		fmt.Fprintf(w, "\nskipped (every test must run here):\n")
		for _, sk := range s.Skips {
			fmt.Fprintf(w, "  %s\n", sk)
		}
	}
	if len(s.OptIn) > 0 {
		sort.Strings(s.OptIn)
		fmt.Fprintf(w, "\nopt-in suites not run (they need credentials of a real service):\n")
		for _, o := range s.OptIn {
			fmt.Fprintf(w, "  %s\n", o)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", s.Passed, s.Failed, s.Skipped)
}

func main() {
	allowSkips := flag.Bool("allow-skips", false, "list skipped tests without failing (the only-Go tier)")
	flag.Parse()
	s, err := Summarize(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsum: reading go test -json: %v\n", err)
		os.Exit(2)
	}
	s.Print(os.Stdout)
	if *allowSkips {
		s.Skipped = 0
	}
	if !s.OK() {
		os.Exit(1)
	}
}
