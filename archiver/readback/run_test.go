package readback_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = readback.Run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

// TestRunS3 runs `archiver events` the way an operator does: credentials from the environment.
// Not parallel (t.Setenv).
func TestRunS3(t *testing.T) {
	gw := versitygw.StartT(t)
	bucket := gw.BucketT(t)
	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "")
	s, err := storage.Open(testCtx(t), storage.Options{URL: "s3://" + bucket + "/p", Endpoint: gw.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	all := fixture(t, s)
	store := []string{"--store", "s3://" + bucket + "/p", "--s3-endpoint", gw.Endpoint}

	code, out, errOut := run(t, append(store, "--from", "2026-11-25", "--to", "2026-11-27")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var want strings.Builder
	for _, w := range all {
		want.Write(w.line)
		want.WriteByte('\n')
	}
	if out != want.String() {
		t.Fatalf("stdout =\n%s\nwant\n%s", out, want.String())
	}

	// Filters, and the subcommand name tolerated in front.
	code, out, errOut = run(t, append([]string{"events"}, append(store, "--from", "2026-11-26", "--domain", "push.example.com", "--event", "PUBLISH_DONE")...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want.Reset()
	for _, w := range all {
		if w.day == "2026-11-26" && w.domain == "push.example.com" && w.event == "PUBLISH_DONE" {
			want.Write(w.line)
			want.WriteByte('\n')
		}
	}
	if out != want.String() || out == "" {
		t.Fatalf("filtered stdout =\n%s\nwant\n%s", out, want.String())
	}

	// Table.
	code, out, errOut = run(t, append(store, "--from", "2026-11-25", "--format", "table")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "RECEIVED_AT") || len(lines) != 1+countDay(all, "2026-11-25") {
		t.Fatalf("table:\n%s", out)
	}
	if !strings.Contains(out, "push.example.com/live/example_stream") || !strings.Contains(out, "2020-04-27T02:22:14Z") || !strings.Contains(out, "verified") {
		t.Fatalf("table lacks expected cells:\n%s", out)
	}
	for _, w := range all {
		if sig := w.line; bytes.Contains(sig, []byte("fa5addca9ea94589d2a7f936a82e2ef3")) && strings.Contains(out, "fa5addca9ea94589d2a7f936a82e2ef3") {
			t.Fatal("table prints the callback's auth_sign")
		}
	}

	// Empty range: exit 0, nothing on stdout, a note on stderr.
	code, out, errOut = run(t, append(store, "--from", "2030-01-01")...)
	if code != 0 || out != "" || !strings.Contains(errOut, "no matching events") {
		t.Fatalf("empty range: exit %d stdout %q stderr %q", code, out, errOut)
	}

	// Runtime errors: exit 1 with a message naming the problem, never the secret.
	code, _, errOut = run(t, "--store", "s3://missing-bucket/p", "--s3-endpoint", gw.Endpoint, "--from", "2026-11-25")
	if code != 1 || !strings.Contains(errOut, "missing-bucket") || strings.Contains(errOut, gw.SecretKey) {
		t.Fatalf("missing bucket: exit %d stderr %q", code, errOut)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-"+gw.SecretKey)
	code, _, errOut = run(t, append(store, "--from", "2026-11-25")...)
	if code != 1 || !strings.Contains(errOut, "credentials") || strings.Contains(errOut, gw.SecretKey) {
		t.Fatalf("wrong secret: exit %d stderr %q", code, errOut)
	}
}

func countDay(all []written, day string) int {
	n := 0
	for _, w := range all {
		if w.day == day {
			n++
		}
	}
	return n
}

func TestRunFileStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := storage.Open(testCtx(t), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	all := fixture(t, s)
	code, out, errOut := run(t, "--store", "file://"+dir, "--from", "2026-11-27", "--event", "PUBLISH")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var want strings.Builder
	for _, w := range all {
		if w.day == "2026-11-27" && w.event == "PUBLISH" {
			want.Write(w.line)
			want.WriteByte('\n')
		}
	}
	if out != want.String() || out == "" {
		t.Fatalf("stdout =\n%s\nwant\n%s", out, want.String())
	}
	// --format csv with --stream and --tz: a header, one row per matching event, times in the zone.
	code, out, errOut = run(t, "--store", "file://"+dir, "--from", "2026-11-27", "--stream", "room_1001", "--format", "csv", "--tz", "Asia/Shanghai")
	if code != 0 {
		t.Fatalf("csv: exit %d: %s", code, errOut)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 || strings.Join(recs[0], ",") != strings.Join(readback.CSVColumns, ",") {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	n := 0
	for _, w := range all {
		if w.day == "2026-11-27" && bytes.Contains(w.line, []byte(`"stream":"room_1001"`)) {
			n++
		}
	}
	if len(recs)-1 != n || n == 0 {
		t.Errorf("csv --stream room_1001: %d rows, want %d", len(recs)-1, n)
	}
	for _, r := range recs[1:] {
		if r[5] != "room_1001" || !strings.HasPrefix(r[0], "2026-11-27T18:") || !strings.HasSuffix(r[0], "+08:00") || r[8] != "116.31.96.221" || r[9] != "113.96.102.42" {
			t.Errorf("csv row %q: want stream room_1001, received_at 18:xx+08:00, client and node IP", r)
		}
	}
	// The table shows where from, too.
	code, out, _ = run(t, "--store", "file://"+dir, "--from", "2026-11-27", "--app", "live", "--stream", "room_1001", "--format", "table")
	if code != 0 || !strings.Contains(out, "CLIENT_IP") || !strings.Contains(out, "116.31.96.221") || strings.Contains(out, "example_stream") {
		t.Errorf("table --stream room_1001:\n%s", out)
	}
	code, out, _ = run(t, "--store", "file://"+dir, "--from", "2026-11-27", "--app", "other")
	if code != 0 || out != "" {
		t.Errorf("--app other: exit %d, %q", code, out)
	}
	// A store directory that does not exist is a runtime error that says so.
	code, _, errOut = run(t, "--store", "file://"+filepath.Join(dir, "nope"), "--from", "2026-11-27")
	if code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("missing dir: exit %d stderr %q", code, errOut)
	}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing --from"},
		{[]string{"--from", "2026-13-01"}, "invalid --from"},
		{[]string{"--from", "2026-11-26", "--to", "2026-11-25"}, "before --from"},
		{[]string{"--from", "2020-01-01", "--to", "2026-01-01"}, "at most 366 days"},
		{[]string{"--from", "2026-11-26", "--event", "publish"}, "invalid --event"},
		{[]string{"--from", "2026-11-26", "--format", "xml"}, "invalid --format"},
		{[]string{"--from", "2026-11-26", "--tz", "Mars/Olympus"}, `invalid --tz "Mars/Olympus"`},
		{[]string{"--from", "tomorrow"}, `invalid --from "tomorrow": want a date as YYYY-MM-DD, today or yesterday`},
		{[]string{"--from", "2026-11-26", "extra"}, "unexpected argument"},
		{[]string{"--from", "2026-11-26", "--bogus"}, "flag provided but not defined"},
		{[]string{"--from", "2026-11-26", "--store", "/tmp/x"}, "unsupported store"},
		{[]string{"--from", "2026-11-26", "--store", "s3://Bucket/p"}, "lower-case"},
		{[]string{"--from", "2026-11-26", "--store", "s3://bucket", "--s3-endpoint", "127.0.0.1:7070"}, "http://HOST"},
	} {
		code, out, errOut := run(t, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("Run(%q) = exit %d, stdout %q, stderr %q; want exit 2 mentioning %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if code, _, errOut := run(t, "-h"); code != 0 || !strings.Contains(errOut, "usage: archiver events") {
		t.Errorf("-h: exit %d, stderr %q", code, errOut)
	}
}
