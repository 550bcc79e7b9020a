package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// inProcess runs an archiver command in this process (the words are parsed the same way as in
// the binary; the subprocess tests cover the binary itself).
func inProcess(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var o, e bytes.Buffer
	code = run(ctx, args, &o, &e)
	return o.String(), e.String(), code
}

// tookRE matches what differs between two runs of one command: verify's time taken, and the
// report's size (its provenance quotes the command line, words and all).
var tookRE = regexp.MustCompile(`"took":"[^"]*"|\(\d+(\.\d+)?m?s\)|, \d+ bytes`)

// TestSameWordsEverywhere: events, sessions, verify, compact and report read the same days for
// today and yesterday as for the dates they stand for, refuse another word the same way (exit 2,
// naming the flag), and the filters and --tz mean the same in each command that lists callbacks
// or sessions.
func TestSameWordsEverywhere(t *testing.T) {
	now := time.Now().UTC()
	if now.Hour() == 23 && now.Minute() >= 58 { // today must not change during the test: wait for it
		next := now.Truncate(24 * time.Hour).Add(24*time.Hour + 5*time.Second)
		time.Sleep(time.Until(next))
		now = time.Now().UTC()
	}
	today, yesterday := layout.Day(now, nil), layout.Day(now.AddDate(0, 0, -1), nil)
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessionstest.Write(context.Background(), st, sessionstest.Spec{From: yesterday, Days: 2, Streams: 8, MeanDuration: time.Hour, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	store := "file://" + dir
	_, pub := keyPair(t, t.TempDir())
	out := filepath.Join(t.TempDir(), "report.html")

	// 1. A word reads what its date reads.
	words := []struct {
		name string
		args func(from, to string) []string
	}{
		{"events", func(f, to string) []string { return []string{"events", "--store", store, "--from", f, "--to", to} }},
		{"events csv", func(f, to string) []string {
			return []string{"events", "--store", store, "--from", f, "--to", to, "--format", "csv"}
		}},
		{"sessions", func(f, to string) []string {
			return []string{"sessions", "--store", store, "--from", f, "--to", to, "--format", "jsonl"}
		}},
		{"verify", func(f, to string) []string {
			return []string{"verify", "--store", store, "--from", f, "--to", to, "--public-key", pub, "--format", "jsonl", "--quiet"}
		}},
		{"report", func(f, to string) []string {
			return []string{"report", "--store", store, "--from", f, "--to", to, "--out", out}
		}},
		{"replay", func(f, to string) []string {
			return []string{"replay", "--store", store, "--from", f, "--to", to, "--to-url", "http://127.0.0.1:9/", "--dry-run"}
		}},
	}
	for _, w := range words {
		for _, r := range []struct{ from, to, fromDay, toDay string }{
			{"today", "", today, ""}, {"yesterday", "", yesterday, ""}, {"yesterday", "today", yesterday, today},
		} {
			gotOut, gotErr, gotCode := inProcess(t, w.args(r.from, r.to)...)
			wantOut, wantErr, wantCode := inProcess(t, w.args(r.fromDay, r.toDay)...)
			gotOut, wantOut = tookRE.ReplaceAllString(gotOut, ""), tookRE.ReplaceAllString(wantOut, "")
			if gotCode != wantCode || gotOut != wantOut || gotErr != wantErr || gotCode == 2 {
				t.Errorf("%s --from %s --to %q: exit %d, %d bytes, stderr %q; with the dates: exit %d, %d bytes, stderr %q",
					w.name, r.from, r.to, gotCode, len(gotOut), gotErr, wantCode, len(wantOut), wantErr)
			}
			if w.name != "verify" && (gotOut == "" || strings.Contains(gotErr, "no matching")) {
				t.Errorf("%s --from %s: read nothing; the archive has traffic on %s and %s", w.name, r.from, yesterday, today)
			}
		}
	}
	if o, e, code := inProcess(t, "compact", "--store", store, "--day", "yesterday"); code != 0 || !strings.HasPrefix(o, "day "+yesterday+":") {
		t.Errorf("compact --day yesterday: exit %d, %q %q; want day %s compacted", code, o, e, yesterday)
	}

	// 2. Another word, or a date in another shape, is a usage error naming the flag.
	for _, tc := range []struct {
		args      []string
		flag, val string
	}{
		{[]string{"events", "--from", "tomorrow"}, "--from", "tomorrow"},
		{[]string{"sessions", "--from", "tomorrow"}, "--from", "tomorrow"},
		{[]string{"verify", "--from", "tomorrow", "--public-key", pub}, "--from", "tomorrow"},
		{[]string{"report", "--from", "tomorrow", "--out", out}, "--from", "tomorrow"},
		{[]string{"compact", "--day", "tomorrow"}, "--day", "tomorrow"},
		{[]string{"replay", "--from", "tomorrow", "--to-url", "http://127.0.0.1:9/"}, "--from", "tomorrow"},
		{[]string{"events", "--from", "today", "--to", "Today"}, "--to", "Today"},
		{[]string{"sessions", "--from", "2026/11/01"}, "--from", "2026/11/01"},
		{[]string{"verify", "--from", "yesterday", "--to", "now", "--public-key", pub}, "--to", "now"},
		{[]string{"report", "--from", "yesterday", "--to", "26-11-01", "--out", out}, "--to", "26-11-01"},
	} {
		args, flag, val := tc.args, tc.flag, tc.val
		_, e, code := inProcess(t, append(args, "--store", store)...)
		if code != 2 || !strings.Contains(e, "invalid "+flag+" \""+val+"\"") || !strings.Contains(e, "YYYY-MM-DD") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and invalid %s %q with the accepted forms", args, code, e, flag, val)
		}
	}

	// 3. The filters narrow each listing to what they name; --tz changes no row, only times.
	count := func(args ...string) int {
		t.Helper()
		o, e, code := inProcess(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, e)
		}
		if args[0] == "report" {
			m := regexp.MustCompile(`: (\d+) sessions of`).FindStringSubmatch(o)
			if m == nil {
				t.Fatalf("report printed %q", o)
			}
			n := 0
			for _, c := range m[1] {
				n = n*10 + int(c-'0')
			}
			return n
		}
		return strings.Count(o, "\n")
	}
	rng := []string{"--store", store, "--from", "yesterday", "--to", "today"}
	for _, cmd := range [][]string{{"events"}, {"sessions", "--format", "jsonl"}, {"report", "--out", out}} {
		all := count(append(cmd, rng...)...)
		for _, f := range [][]string{
			{"--domain", sessionstest.Domains[1]}, {"--stream", "room_3"}, {"--event", "PUBLISH_DONE"},
			{"--app", "live", "--stream", "room_3"}, {"--tz", "Asia/Shanghai"},
		} {
			n := count(append(append(cmd, rng...), f...)...)
			narrows := f[0] != "--tz" && f[0] != "--app"
			if n == 0 || (narrows && n >= all) || (!narrows && f[0] == "--tz" && n != all) {
				t.Errorf("%s %v: %d of %d", cmd[0], f, n, all)
			}
		}
		if n := count(append(append(cmd, rng...), "--app", "other")...); n != 0 {
			t.Errorf("%s --app other: %d rows", cmd[0], n)
		}
		for _, bad := range [][]string{{"--tz", "Mars/Base"}, {"--event", "publish"}} {
			if _, e, code := inProcess(t, append(append(cmd, rng...), bad...)...); code != 2 || !strings.Contains(e, "invalid "+bad[0]) {
				t.Errorf("%s %v: exit %d, %q", cmd[0], bad, code, e)
			}
		}
	}
	o, _, _ := inProcess(t, append([]string{"sessions", "--format", "csv", "--tz", "Asia/Shanghai"}, rng...)...)
	if !strings.Contains(o, "+08:00,") || strings.Contains(o, "Z,") {
		t.Errorf("sessions --tz Asia/Shanghai: times not in +08:00:\n%.300s", o)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}
