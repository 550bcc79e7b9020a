package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	const pkg = "example.com/p"
	ev := func(action, test, output string) string {
		return `{"Action":"` + action + `","Package":"` + pkg + `","Test":"` + test + `","Output":` + quote(output) + "}\n"
	}
	tests := []struct {
		name   string
		stream string
		ok     bool
		line   string
		in     []string // substrings of the report
	}{
		{"all pass", ev("run", "TestA", "") + ev("pass", "TestA", "") + ev("pass", "", ""), true,
			"1 passed, 0 failed, 0 skipped", nil},
		{"a skip fails the run", ev("output", "TestB", "    b_test.go:9: needs terraform: set TF_ACC=1\n") +
			ev("output", "TestB", "--- SKIP: TestB (0.00s)\n") + ev("skip", "TestB", "") + ev("pass", "", ""), false,
			"0 passed, 0 failed, 1 skipped", []string{"example.com/p TestB: b_test.go:9: needs terraform: set TF_ACC=1"}},
		{"an opt-in suite is listed, not a failure", ev("output", "TestLive", "    live_test.go:4: opt-in: set LIVE=1 to run it; real service\n") +
			ev("output", "TestLive", "--- SKIP: TestLive (0.00s)\n") + ev("skip", "TestLive", "") + ev("pass", "", ""), true,
			"0 passed, 0 failed, 0 skipped", []string{"opt-in suites not run", "example.com/p TestLive: live_test.go:4: opt-in: set LIVE=1"}},
		{"a failure prints its output", ev("output", "TestC", "    c_test.go:3: got 1, want 2\n") + ev("fail", "TestC", "") +
			ev("fail", "", ""), false, "0 passed, 1 failed, 0 skipped", []string{"--- FAIL example.com/p TestC", "got 1, want 2"}},
		{"subtests and fuzz seeds count", ev("pass", "TestD/one", "") + ev("pass", "TestD", "") + ev("pass", "FuzzE/seed#0", "") +
			ev("pass", "FuzzE", "") + ev("pass", "", ""), true, "4 passed, 0 failed, 0 skipped", nil},
		{"a build failure fails the run", "# example.com/p\np.go:1: syntax error\n" + ev("output", "", "FAIL\texample.com/p [build failed]\n") +
			ev("fail", "", ""), false, "0 passed, 0 failed, 0 skipped", []string{"syntax error", "--- FAIL (package) example.com/p"}},
		{"go's own lines do not fail a run", "go: downloading example.com/m v1.0.0\n" + ev("pass", "TestF", "") + ev("pass", "", ""), true,
			"1 passed, 0 failed, 0 skipped", nil},
		{"TestMain exit fails the run", ev("output", "", "starting: boom\n") + ev("fail", "", ""), false,
			"0 passed, 0 failed, 0 skipped", []string{"starting: boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Summarize(strings.NewReader(tt.stream), nil)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			s.Print(&b)
			out := b.String()
			if s.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v\n%s", s.OK(), tt.ok, out)
			}
			if !strings.HasSuffix(out, tt.line+"\n") {
				t.Errorf("closing line: want %q at the end of\n%s", tt.line, out)
			}
			for _, w := range tt.in {
				if !strings.Contains(out, w) {
					t.Errorf("report lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}
