// Package archivetest holds helpers shared by the archive tests of both modules: sample bodies,
// posting callbacks, and reading the archive back.
package archivetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// SampleKey is the auth_sign_key the signed samples were made with.
const SampleKey = "0123456789abcdef0123456789abcdef"

// SampleSignTime is a clock at which the signed samples are fresh (auth_timestamp of
// signed-publish.json is 1587954140).
var SampleSignTime = time.Unix(1587954140, 0).UTC()

// SamplesDir is archiver/testdata/callbacks (copies of the spec's sample bodies).
func SamplesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "archiver", "testdata", "callbacks")
}

// Sample returns one sample body by file name.
func Sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(SamplesDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SampleNames lists the sample bodies.
func SampleNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(SamplesDir(), "*.json"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no samples in %s", SamplesDir())
	}
	out := make([]string, len(m))
	for i, p := range m {
		out[i] = filepath.Base(p)
	}
	sort.Strings(out)
	return out
}

// Client is a keep-alive HTTP client with a timeout.
var Client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// Post sends body to url and decodes the JSON answer.
func Post(t testing.TB, url string, body []byte) Response {
	t.Helper()
	r, err := TryPost(url, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return r
}

// PostAs is Post with the given Content-Type header values (none when nil): Live's content type
// is undocumented.
func PostAs(t testing.TB, url string, contentType []string, body []byte) Response {
	t.Helper()
	r, err := tryPost(url, contentType, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return r
}

// TryPost is Post without failing the test.
func TryPost(url string, body []byte) (Response, error) {
	return tryPost(url, []string{"application/json"}, body)
}

func tryPost(url string, contentType []string, body []byte) (Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	if contentType != nil {
		req.Header["Content-Type"] = contentType
	}
	resp, err := Client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	_ = json.Unmarshal(raw, &r.Body)
	return r, nil
}

// Event builds a distinct unsigned callback body.
func Event(domain, stream, event string, publishTS int64) []byte {
	return fmt.Appendf(nil, `{"domain":%q,"app":"live","stream":%q,"user_args":"a=1&b=2","client_ip":"10.0.0.1","node_ip":"10.0.0.2","publish_timestamp":"%d","event":%q}`,
		domain, stream, publishTS, event)
}

// S3Store opens the bucket of a VersityGW as a store.
func S3Store(t testing.TB, gw *versitygw.Server, bucket, prefix string) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Options{
		URL: "s3://" + bucket + "/" + prefix, Endpoint: gw.Endpoint, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// ReadAll reads back every event of the days around now (and of extra days) from st.
func ReadAll(t testing.TB, st storage.Store, from, to string) []readback.Event {
	t.Helper()
	var out []readback.Event
	err := readback.Read(context.Background(), st, readback.Query{From: from, To: to}, func(e readback.Event) error {
		e.Raw = append(json.RawMessage(nil), e.Raw...)
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("reading the archive back: %v", err)
	}
	return out
}

// Today is the UTC day of now, and the days before and after (to read around midnight).
func Today() (from, to string) {
	now := time.Now().UTC()
	return layout.Day(now.Add(-24*time.Hour), nil), layout.Day(now.Add(24*time.Hour), nil)
}

// StripArchive removes the trailing ,"archive":{...} from an archived line, giving back the
// compacted callback body as received.
func StripArchive(t testing.TB, line []byte) []byte {
	t.Helper()
	i := bytes.LastIndex(line, []byte(`,"archive":{`))
	if i < 0 || !bytes.HasSuffix(line, []byte("}}")) {
		t.Fatalf("line has no trailing archive field: %s", line)
	}
	return append(append([]byte(nil), line[:i]...), '}')
}

// ArchiveField returns the raw "archive" object of an archive line.
func ArchiveField(t testing.TB, line []byte) json.RawMessage {
	t.Helper()
	var rec struct {
		Archive json.RawMessage `json:"archive"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || rec.Archive == nil {
		t.Fatalf("line has no archive field (%v): %s", err, line)
	}
	return rec.Archive
}

// Samples returns every sample body by file name.
func Samples(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range SampleNames(t) {
		out[name] = Sample(t, name)
	}
	return out
}

// Compact is json.Compact as bytes.
func Compact(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Keys lists the object keys under prefix.
func Keys(t testing.TB, st storage.Store, prefix string) []string {
	t.Helper()
	objs, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

// DataKeys lists the archive objects (not the _rejected samples).
func DataKeys(t testing.TB, st storage.Store) []string {
	t.Helper()
	var out []string
	for _, k := range Keys(t, st, "") {
		if strings.HasPrefix(k, "dt=") {
			out = append(out, k)
		}
	}
	return out
}

// Eventually polls cond until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ReadToday reads back the events of yesterday, today and tomorrow (UTC).
func ReadToday(t testing.TB, st storage.Store) []readback.Event {
	t.Helper()
	from, to := Today()
	return ReadAll(t, st, from, to)
}
