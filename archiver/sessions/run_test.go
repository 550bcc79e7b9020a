package sessions_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
)

func TestRunUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-h"}, 0, "usage: archiver sessions"},
		{nil, 2, "missing --from"},
		{[]string{"--from", "2026-11-31"}, 2, `invalid --from "2026-11-31"`},
		{[]string{"--from", "2026-11-02", "--to", "2026-11-01"}, 2, "is before"},
		{[]string{"--from", "2026-11-01", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--from", "2026-11-01", "--status", "OPEN"}, 2, `invalid --status "OPEN"`},
		{[]string{"--from", "2026-11-01", "--format", "table,csv"}, 2, `invalid --format "table,csv"`},
		{[]string{"--from", "2026-11-01", "--store", "ftp://x"}, 2, "unsupported store"},
		{[]string{"--from", "2026-11-01", "--bogus"}, 2, "flag provided but not defined: -bogus"},
	} {
		var out, errb bytes.Buffer
		code := sessions.Run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
	}
}

// TestRunFileStore: in-process, the default format off a terminal is jsonl, and the output is
// what Read lists.
func TestRunFileStore(t *testing.T) {
	st, dir := fileStore(t)
	if _, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 3, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := sessions.Run(context.Background(), []string{"sessions", "--store", "file://" + dir, "--from", "2026-11-02", "--app", "live"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want, _ := readAll(t, st, sessions.Query{From: "2026-11-02"}, sessions.ReadOptions{})
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Run printed %d lines, Read lists %d sessions", len(got), len(want))
	}
}
