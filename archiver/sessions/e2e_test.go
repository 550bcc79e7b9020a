package sessions_test

// End to end: the real archiver binary receives callbacks (`archiver serve`) into a file store
// and into a real VersityGW bucket, and `archiver sessions` lists them.

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

func TestMain(m *testing.M) {
	code := m.Run()
	versitygw.StopShared()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	binary    string
	buildErr  error
)

// archiverBinary builds the archiver once per test binary.
func archiverBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := devenv.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "sessions-e2e-"); buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var b devenv.Binaries
		b, buildErr = devenv.Build(ctx, root, binDir, "", "archiver")
		binary = b.Archiver
	})
	if buildErr != nil {
		t.Fatalf("building the archiver: %v", buildErr)
	}
	return binary
}

func TestSessionsCommandFileStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exerciseSessions(t, []string{"--store", "file://" + filepath.Join(dir, "archive")}, nil)
}

func TestSessionsCommandS3(t *testing.T) {
	t.Parallel()
	gw := versitygw.Shared(t)
	bucket := gw.BucketT(t)
	exerciseSessions(t, []string{"--store", "s3://" + bucket + "/a/", "--s3-endpoint", gw.Endpoint}, gw.Env())
}

// exerciseSessions posts the sample callbacks and a few variants to `archiver serve` on the
// given store, then checks what `archiver sessions` lists in every format.
func exerciseSessions(t *testing.T, store, env []string) {
	bin := archiverBinary(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`{"push.example.com":"`+archivetest.SampleKey+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	denv, err := devenv.NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = denv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := denv.Start(ctx, proc.Spec{
		Name: "archiver", Path: bin, Dir: dir, Env: env, WaitListening: true, StopTimeout: 60 * time.Second,
		Args: append([]string{"serve", "--listen", "127.0.0.1:0", "--spool", filepath.Join(dir, "spool"), "--keys", keys, "--allow-unsigned",
			"--signature-window", "0", "--flush-interval", "100ms"}, store...),
	})
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string) []byte { // unsigned samples go to a domain without a key
		return bytes.Replace(archivetest.Sample(t, name), []byte("push.example.com"), []byte("open.example.com"), 1)
	}
	seedDone := bytes.Replace(bytes.Replace(open("seed-example.json"), []byte(`"PUBLISH"`), []byte(`"PUBLISH_DONE"`), 1),
		[]byte(`"1587954134,"`), []byte(`"1587954134"`), 1)
	repeat := bytes.Replace(open("unsigned-publish.json"), []byte("116.31.96.221"), []byte("116.31.96.222"), 1)
	noTS := bytes.Replace(open("unsigned-publish.json"), []byte(`"1764115200"`), []byte(`"soon"`), 1)
	posts := []struct {
		name, status string
		body         []byte
	}{
		{"seed PUBLISH with the stray comma", "ok", open("seed-example.json")},
		{"its PUBLISH_DONE without the comma", "ok", seedDone},
		{"signed PUBLISH", "ok", archivetest.Sample(t, "signed-publish.json")},
		{"signed PUBLISH_DONE", "ok", archivetest.Sample(t, "signed-publish_done.json")},
		{"unsigned PUBLISH", "ok", open("unsigned-publish.json")},
		{"its redelivery", "duplicate", open("unsigned-publish.json")},
		{"a repeat: same identity, other body", "", repeat},
		{"unsigned PUBLISH_DONE", "ok", open("unsigned-publish_done.json")},
		{"no usable publish_timestamp", "ok", noTS},
	}
	for _, ps := range posts {
		r := archivetest.Post(t, p.URL+"/callback", ps.body)
		if r.Status != 200 || (ps.status != "" && r.Body["status"] != ps.status) {
			t.Fatalf("%s: %d %s", ps.name, r.Status, r.Raw)
		}
	}
	if err := p.Shutdown(); err != nil || p.ExitCode() != 0 {
		t.Fatalf("stopping the archiver: %v (exit %d)\n%s", err, p.ExitCode(), p.LogTail(30))
	}
	now := time.Now().UTC()
	from, to := layout.Day(now.Add(-24*time.Hour), nil), layout.Day(now, nil)
	sessions := func(args ...string) (string, string, int) {
		cmd := exec.CommandContext(ctx, bin, append(append([]string{"sessions", "--from", from, "--to", to}, store...), args...)...)
		cmd.Env = append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		return out.String(), errb.String(), code
	}

	out, stderr, code := sessions() // stdout is a pipe: jsonl
	if code != 0 {
		t.Fatalf("archiver sessions: exit %d\n%s", code, stderr)
	}
	type row struct {
		Domain, App, Stream string
		PublishTimestamp    int64   `json:"publish_timestamp"`
		StartedAt           string  `json:"started_at"`
		EndedAt             *string `json:"ended_at"`
		DurationS           *int64  `json:"duration_s"`
		Status              string
		Verified            bool
		ClientIP            *string `json:"client_ip"`
		NodeIP              *string `json:"node_ip"`
		DoneClientIP        *string `json:"done_client_ip"`
		DoneNodeIP          *string `json:"done_node_ip"`
	}
	var rows []row
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r row
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	want := []struct {
		domain, stream string
		pts            int64
		verified       bool
		client, node   string
	}{
		{"open.example.com", "example_stream", 1587954134, false, "100.125.58.90", "112.12.196.218"},
		{"push.example.com", "example_stream", 1587954134, true, "100.125.58.90", "112.12.196.218"},
		{"open.example.com", "room_1001", 1764115200, false, "116.31.96.221", "113.96.102.42"},
	}
	if len(rows) != len(want) {
		t.Fatalf("listed %d sessions, want %d:\n%s", len(rows), len(want), out)
	}
	for i, w := range want {
		r := rows[i]
		if r.Domain != w.domain || r.App != "live" || r.Stream != w.stream || r.PublishTimestamp != w.pts || r.Status != "closed" || r.Verified != w.verified {
			t.Errorf("session %d: %+v, want %+v closed", i, r, w)
			continue
		}
		if r.ClientIP == nil || *r.ClientIP != w.client || r.NodeIP == nil || *r.NodeIP != w.node || r.DoneClientIP != nil || r.DoneNodeIP != nil {
			t.Errorf("session %d: from where: %+v, want client %s node %s (the same in both callbacks)", i, r, w.client, w.node)
		}
		if r.StartedAt != time.Unix(w.pts, 0).UTC().Format(time.RFC3339) || r.EndedAt == nil || r.DurationS == nil {
			t.Errorf("session %d: %+v", i, r)
			continue
		}
		end, err := time.Parse(layout.ReceivedAtLayout, *r.EndedAt)
		if err != nil || now.Sub(end) > 5*time.Minute || end.After(now) || *r.DurationS != end.Unix()-w.pts {
			t.Errorf("session %d: ended_at %s duration_s %d (now %s)", i, *r.EndedAt, *r.DurationS, now)
		}
	}
	if !strings.Contains(stderr, `publish_timestamp "soon" has no leading digits`) || !strings.Contains(stderr, "not paired: 1 callbacks") {
		t.Errorf("the callback without a usable publish_timestamp is not reported:\n%s", stderr)
	}

	out, _, code = sessions("--format", "csv", "--domain", "open.example.com")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "domain,app,stream,publish_timestamp,started_at,ended_at,duration_s,status,verified,client_ip,node_ip,done_client_ip,done_node_ip" ||
		recs[1][9] != "100.125.58.90" || recs[1][10] != "112.12.196.218" {
		t.Errorf("csv (exit %d, %v):\n%s", code, err, out)
	}

	out, _, code = sessions("--format", "table", "--stream", "room_1001")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "STARTED_AT") || !strings.HasPrefix(lines[3], "1 sessions: 1 closed, 0 open, 0 end_only; streamed ") {
		t.Errorf("table (exit %d):\n%s", code, out)
	}

	out, stderr, code = sessions("--status", "open")
	if code != 0 || out != "" || !strings.Contains(stderr, "no matching sessions") {
		t.Errorf("--status open: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	_, stderr, code = sessions("--status", "running")
	if code != 2 || !strings.Contains(stderr, `invalid --status "running": want closed, open or end_only`) {
		t.Errorf("bad --status: exit %d\n%s", code, stderr)
	}
	_, stderr, code = sessions("--format", "xml")
	if code != 2 || !strings.Contains(stderr, "want table, jsonl or csv") {
		t.Errorf("bad --format: exit %d\n%s", code, stderr)
	}
	for _, s := range []string{archivetest.SampleKey, "fa5addca9ea94589"} {
		if strings.Contains(stderr, s) {
			t.Errorf("a key or signature on stderr")
		}
	}
}
