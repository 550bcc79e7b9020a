package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// readBack waits until the archive holds every delivered event, then shows what an auditor
// sees: the objects under dt=.../ and the events as `archiver events` prints them.
func (r *runner) readBack(ctx context.Context) error {
	want := map[Event]bool{}
	for _, e := range r.res.Delivered {
		want[e] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	var evs []ArchivedEvent
	for {
		var err error
		evs, err = r.archiverEvents(ctx)
		if err != nil {
			return err
		}
		if len(evs) >= len(want) {
			break
		}
		if time.Now().After(deadline) {
			r.step("archive", "only %d of %d events after 30s; comparing what is there", len(evs), len(want))
			break
		}
		if err := ctxsleep.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	// Give a wrongly stored redelivery the chance to show up: one more flush, then read again.
	if err := ctxsleep.Sleep(ctx, FlushInterval+FlushInterval/2); err != nil {
		return err
	}
	evs, err := r.archiverEvents(ctx)
	if err != nil {
		return err
	}
	r.res.Archived = evs

	objs, err := r.listObjects(ctx)
	if err != nil {
		return err
	}
	r.res.Objects = objs
	r.step("archive", "%d object%s in s3://%s/%s/:", len(objs), plural(len(objs)), Bucket, Prefix)
	for _, o := range objs {
		r.detail("%-72s %6d bytes", o.Key, o.Size)
	}
	r.step("read back", "%s", r.eventsCommandLine())
	r.detail("%-12s  %-14s  %-10s  %-9s  %-24s  %s", "EVENT", "APP/STREAM", "PUBLISHED", "SIGNATURE", "RECEIVED_AT", "EVENT_ID")
	for _, e := range evs {
		recv := e.ReceivedAt
		if t, err := time.Parse(time.RFC3339Nano, recv); err == nil {
			recv = t.UTC().Format("2006-01-02T15:04:05.000Z")
		}
		r.detail("%-12s  %-14s  %-10s  %-9s  %-24s  %s", e.Event.Event, e.App+"/"+e.Stream, e.PublishTimestamp, e.Signature, recv, e.EventID)
	}
	return nil
}

// sessions shows who streamed what, when, as `archiver sessions` pairs the archived callbacks.
func (r *runner) sessions(ctx context.Context) error {
	from, to := r.days()
	args := []string{"sessions", "--store", r.storeURL(), "--s3-endpoint", r.s3.Endpoint, "--from", from, "--to", to, "--domain", r.o.Domain}
	table, err := r.archiverOutput(ctx, append(args, "--format", "table"))
	if err != nil {
		return err
	}
	r.step("sessions", "archiver %s", strings.Join(args, " "))
	for _, l := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		r.detail("%s", l)
	}
	jsonl, err := r.archiverOutput(ctx, append(args, "--format", "jsonl"))
	if err != nil {
		return err
	}
	r.res.Sessions = strings.Split(strings.TrimSpace(jsonl), "\n")
	return nil
}

// archiverOutput runs the archiver binary with args (credentials in the environment) and returns
// its standard output.
func (r *runner) archiverOutput(ctx context.Context, args []string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bins.Archiver, args...)
	cmd.Env = append(os.Environ(), r.s3.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("archiver %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// days is the --from/--to range covering the run (it may cross midnight UTC).
func (r *runner) days() (from, to string) {
	return r.start.UTC().Format(time.DateOnly), time.Now().UTC().Format(time.DateOnly)
}

func (r *runner) eventsArgs() []string {
	from, to := r.days()
	return []string{"events", "--store", r.storeURL(), "--s3-endpoint", r.s3.Endpoint, "--from", from, "--to", to, "--domain", r.o.Domain}
}

// eventsCommandLine is the command as a user would type it (credentials in the environment).
func (r *runner) eventsCommandLine() string {
	return "archiver " + strings.Join(r.eventsArgs(), " ")
}

// archiverEvents runs the real `archiver events` and parses its JSON Lines.
func (r *runner) archiverEvents(ctx context.Context) ([]ArchivedEvent, error) {
	out, err := r.archiverOutput(ctx, r.eventsArgs())
	if err != nil {
		return nil, err
	}
	var evs []ArchivedEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		e, err := parseArchived(line)
		if err != nil {
			return nil, fmt.Errorf("archiver events line %d: %w: %.200s", n, err, line)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

func parseArchived(line []byte) (ArchivedEvent, error) {
	id, err := identity(line)
	if err != nil {
		return ArchivedEvent{}, err
	}
	var rec struct {
		Archive struct {
			EventID    string `json:"event_id"`
			Signature  string `json:"signature"`
			ReceivedAt string `json:"received_at"`
		} `json:"archive"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return ArchivedEvent{}, err
	}
	if rec.Archive.EventID == "" {
		return ArchivedEvent{}, errors.New(`no "archive" object with an event_id`)
	}
	return ArchivedEvent{Event: id, EventID: rec.Archive.EventID, Signature: rec.Archive.Signature, ReceivedAt: rec.Archive.ReceivedAt}, nil
}

// identity extracts (domain, app, stream, event, publish_timestamp) from a callback body
// or an archive line. publish_timestamp is kept as sent: a string's content, or a number's text.
func identity(body []byte) (Event, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil {
		return Event{}, fmt.Errorf("not a JSON object: %w", err)
	}
	str := func(k string) string {
		raw := f[k]
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return string(bytes.TrimSpace(raw))
	}
	e := Event{Domain: str("domain"), App: str("app"), Stream: str("stream"), Event: str("event"), PublishTimestamp: str("publish_timestamp")}
	if e.Domain == "" || e.Event == "" {
		return e, errors.New("domain or event missing")
	}
	return e, nil
}

func (r *runner) listObjects(ctx context.Context) ([]Object, error) {
	c, err := r.s3.Client()
	if err != nil {
		return nil, err
	}
	var objs []Object
	for o := range c.ListObjects(ctx, Bucket, minio.ListObjectsOptions{Prefix: Prefix + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s/: %w", Bucket, Prefix, o.Err)
		}
		objs = append(objs, Object{Key: o.Key, Size: o.Size})
	}
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// postCallback sends body to the archiver exactly as the Live service would.
func postCallback(ctx context.Context, url string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// duplicatesMetric returns the value of the archiver's duplicate counter from /metrics, or
// "" when it has none (the archive comparison is the proof either way).
func duplicatesMetric(ctx context.Context, base string) string {
	f, err := metrics.Scrape(ctx, base+"/metrics")
	if err != nil {
		return ""
	}
	v, ok := f.Value("livehook_archiver_duplicates_total")
	if !ok {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// copyTF copies the *.tf files of src into dst.
func copyTF(src, dst string) error {
	files, err := filepath.Glob(filepath.Join(src, "*.tf"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no Terraform configuration (*.tf) in %s", src)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// summaryLine returns the line of terraform output starting with prefix ("Apply complete!").
func summaryLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return "done"
}

// parseOutputs flattens `terraform output -json` to name -> value text (sensitive values masked).
func parseOutputs(out string) map[string]string {
	var raw map[string]struct {
		Sensitive bool            `json:"sensitive"`
		Value     json.RawMessage `json:"value"`
	}
	m := map[string]string{}
	// The log holds stderr too (e.g. the dev_overrides warning): take the JSON object only.
	i, j := strings.Index(out, "{"), strings.LastIndex(out, "}")
	if i < 0 || j < i || json.Unmarshal([]byte(out[i:j+1]), &raw) != nil {
		return m
	}
	for k, v := range raw {
		var s string
		switch {
		case v.Sensitive:
			s = "(sensitive)"
		case json.Unmarshal(v.Value, &s) == nil:
		default:
			s = string(v.Value)
		}
		m[k] = s
	}
	return m
}
