package sessions_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func fileStore(t testing.TB) (storage.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// oracle is the definition, written the obvious way: every record of the days in memory,
// grouped by identity.
func oracle(t *testing.T, st storage.Store, q sessions.Query) []string {
	t.Helper()
	days, err := q.Days()
	if err != nil {
		t.Fatal(err)
	}
	type agg struct {
		s                          sessions.Session
		pub, done, listed, allSign bool
		pubAt                      time.Time
		pubIP, doneIP              [2]string // client, node of the earliest copy
	}
	m := map[string]*agg{}
	for i, day := range days {
		err := readback.Read(testCtx(t), st, readback.Query{From: day, To: day}, func(e readback.Event) error {
			if e.Archive.PublishTime == nil || (e.Event != "PUBLISH" && e.Event != "PUBLISH_DONE") {
				return nil
			}
			if (q.Domain != "" && e.Domain != q.Domain) || (q.App != "" && e.App != q.App) || (q.Stream != "" && e.Stream != q.Stream) {
				return nil
			}
			pts := e.Archive.PublishTime.Unix()
			k := strings.Join([]string{e.Domain, e.App, e.Stream, time.Unix(pts, 0).String()}, "\x00")
			a := m[k]
			if a == nil {
				a = &agg{s: sessions.Session{Domain: e.Domain, App: e.App, Stream: e.Stream, PublishTimestamp: pts}, allSign: true}
				m[k] = a
			}
			ip := [2]string{e.ClientIP, e.NodeIP}
			earlier := func(ok bool, at time.Time, had [2]string) bool {
				return !ok || e.Archive.ReceivedAt.Before(at) || (e.Archive.ReceivedAt.Equal(at) && ip[0]+"\x00"+ip[1] < had[0]+"\x00"+had[1])
			}
			if e.Event == "PUBLISH" {
				if earlier(a.pub, a.pubAt, a.pubIP) {
					a.pubAt, a.pubIP = e.Archive.ReceivedAt, ip
				}
				a.pub = true
			} else if earlier(a.done, a.s.EndedAt, a.doneIP) {
				a.done, a.s.EndedAt, a.doneIP = true, e.Archive.ReceivedAt, ip
			}
			a.allSign = a.allSign && e.Archive.Signature == layout.SignatureVerified
			a.listed = a.listed || (i > 0 && i < len(days)-1)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out []sessions.Session
	for _, a := range m {
		if !a.listed {
			continue
		}
		s := a.s
		s.Verified = a.allSign
		switch {
		case a.pub && a.done:
			s.Status = sessions.Closed
			s.ClientIP, s.NodeIP = a.pubIP[0], a.pubIP[1]
			if a.doneIP[0] != a.pubIP[0] {
				s.DoneClientIP = a.doneIP[0]
			}
			if a.doneIP[1] != a.pubIP[1] {
				s.DoneNodeIP = a.doneIP[1]
			}
		case a.pub:
			s.Status = sessions.Open
			s.ClientIP, s.NodeIP = a.pubIP[0], a.pubIP[1]
		default:
			s.Status = sessions.EndOnly
			s.ClientIP, s.NodeIP = a.doneIP[0], a.doneIP[1]
		}
		if q.Status != "" && s.Status != q.Status {
			continue
		}
		if (q.Event == "PUBLISH" && !a.pub) || (q.Event == "PUBLISH_DONE" && !a.done) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b sessions.Session) int {
		if a.PublishTimestamp != b.PublishTimestamp {
			return int(a.PublishTimestamp - b.PublishTimestamp)
		}
		return strings.Compare(a.Domain+"\x00"+a.App+"\x00"+a.Stream, b.Domain+"\x00"+b.App+"\x00"+b.Stream)
	})
	lines := make([]string, len(out))
	for i, s := range out {
		lines[i] = string(s.AppendJSON(nil))
	}
	return lines
}

func readAll(t *testing.T, st storage.Store, q sessions.Query, opt sessions.ReadOptions) ([]string, sessions.Stats) {
	t.Helper()
	var got []string
	stats, err := sessions.Read(testCtx(t), st, q, opt, func(s sessions.Session) error {
		got = append(got, string(s.AppendJSON(nil)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, stats
}

// TestReadMatchesOracle: on a generated archive (copies, replicas, repeats, lost callbacks,
// quirks, sessions across midnight) Read lists exactly what the in-memory definition lists,
// with and without spilling to temporary files, for the whole range and sub-ranges.
func TestReadMatchesOracle(t *testing.T) {
	st, _ := fileStore(t)
	res, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 6, Streams: 30, MeanDuration: 5 * time.Hour, MeanGap: 2 * time.Hour, Seed: 7, Gzip: true, RecordsPerObject: 40})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records < 300 {
		t.Fatalf("generated only %d records", res.Records)
	}
	for _, q := range []sessions.Query{
		{From: "2026-11-01", To: "2026-11-06"},
		{From: "2026-11-03"},
		{From: "2026-11-02", To: "2026-11-04", Filter: cli.Filter{Domain: sessionstest.Domains[0]}},
		{From: "2026-11-02", To: "2026-11-05", Filter: cli.Filter{Stream: "room_4"}, Status: sessions.Closed},
		{From: "2026-11-02", To: "2026-11-05", Status: sessions.EndOnly},
		{From: "2026-11-02", To: "2026-11-05", Filter: cli.Filter{App: "live"}, Status: sessions.Open},
		{From: "2026-11-02", To: "2026-11-05", Filter: cli.Filter{Event: "PUBLISH_DONE"}},
		{From: "2026-11-02", To: "2026-11-05", Filter: cli.Filter{Event: "PUBLISH", Domain: sessionstest.Domains[1]}},
	} {
		want := oracle(t, st, q)
		if len(want) == 0 {
			t.Fatalf("%+v: the oracle lists nothing; the generated archive is too small", q)
		}
		for _, spill := range []int{0, 7} {
			got, stats := readAll(t, st, q, sessions.ReadOptions{Options: sessions.Options{SpillAfter: spill, TempDir: t.TempDir()}})
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%+v SpillAfter %d: %d sessions, the definition gives %d\n%s", q, spill, len(got), len(want), firstDiff(got, want))
			}
			if spill > 0 && stats.Spilled == 0 {
				t.Errorf("SpillAfter %d never spilled", spill)
			}
		}
	}
	// Every status occurs, and the whole range has unpairable records, so all paths ran.
	got, stats := readAll(t, st, sessions.Query{From: "2026-11-01", To: "2026-11-06"}, sessions.ReadOptions{})
	all := strings.Join(got, "\n")
	for _, s := range []string{`"closed"`, `"open"`, `"end_only"`, `"verified":true`, `"verified":false`, `"done_client_ip":"10.0.0.2"`, `"done_node_ip":"10.1.0.2"`, `"client_ip":"10.0.0.1"`} {
		if !strings.Contains(all, s) {
			t.Errorf("generated archive gives no session with %s", s)
		}
	}
	if stats.Unusable == 0 || stats.Days != 8 {
		t.Errorf("stats %+v", stats)
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("first difference at %d:\n got  %s\n want %s", i, g, w)
		}
	}
	return ""
}

// TestReadIgnoresDaysOutsideMargin: a partner two days before the range is not looked for.
func TestReadIgnoresDaysOutsideMargin(t *testing.T) {
	st, _ := fileStore(t)
	put := func(day string, lines ...string) {
		if err := st.Put(testCtx(t), layout.ObjectKey(day, "i", 1, 0, false), []byte(strings.Join(lines, "\n")+"\n"), layout.ContentType); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(event, pts, at string) string {
		tm, _ := time.Parse(time.RFC3339, at)
		body := `{"domain":"d","app":"live","stream":"s","publish_timestamp":"` + pts + `","event":"` + event + `"}`
		return string(bytes.TrimSpace(layout.AppendRecord(nil, []byte(body), layout.Archive{ReceivedAt: tm, Signature: "none", PublishTime: layout.ParsePublishTimestamp([]byte(`"` + pts + `"`))})))
	}
	put("2026-11-08", rec("PUBLISH", "1794180000", "2026-11-08T23:20:00Z"))
	put("2026-11-10", rec("PUBLISH_DONE", "1794180000", "2026-11-10T01:00:00Z"))
	got, _ := readAll(t, st, sessions.Query{From: "2026-11-10"}, sessions.ReadOptions{})
	if len(got) != 1 || !strings.Contains(got[0], `"status":"end_only"`) {
		t.Errorf("got %v, want one end_only session", got)
	}
	got, _ = readAll(t, st, sessions.Query{From: "2026-11-09", To: "2026-11-10"}, sessions.ReadOptions{})
	if len(got) != 1 || !strings.Contains(got[0], `"status":"closed"`) {
		t.Errorf("with the partner in the margin day: got %v, want one closed session", got)
	}
}

// TestReadStopsOnError: an error from fn ends the read and is returned; no temporary file
// stays behind.
func TestReadStopsOnError(t *testing.T) {
	st, _ := fileStore(t)
	if _, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 2, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	n := 0
	_, err := sessions.Read(testCtx(t), st, sessions.Query{From: "2026-11-01", To: "2026-11-02"}, sessions.ReadOptions{Options: sessions.Options{SpillAfter: 5, TempDir: tmp}}, func(sessions.Session) error {
		if n++; n == 3 {
			return context.Canceled
		}
		return nil
	})
	if err != context.Canceled {
		t.Errorf("err %v, want the callback's error", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Records keeping the request as sent (archive.content_type, archive.body) pair like any other:
// a pretty-printed text/plain PUBLISH and a compact PUBLISH_DONE without a Content-Type make one
// closed session, read with no unreadable line.
func TestReadRecordsWithRequestAsSent(t *testing.T) {
	st, _ := fileStore(t)
	plain, none := "text/plain; charset=utf-8", ""
	rec := func(event, at string, ct *string, pretty bool) string {
		tm, _ := time.Parse(time.RFC3339, at)
		body := `{"domain":"d","app":"live","stream":"s","publish_timestamp":"1794180000","event":"` + event + `"}`
		a := layout.Archive{ReceivedAt: tm, Signature: "none", PublishTime: layout.ParsePublishTimestamp([]byte(`"1794180000"`)), ContentType: ct}
		if pretty {
			a.Body = strings.ReplaceAll(strings.ReplaceAll(body, `,"`, ",\n  \""), "{", "{\n  ") + "\n"
		}
		return string(bytes.TrimSpace(layout.AppendRecord(nil, []byte(body), a)))
	}
	lines := []string{rec("PUBLISH", "2026-11-10T01:00:00Z", &plain, true), rec("PUBLISH_DONE", "2026-11-10T02:00:00Z", &none, false)}
	if err := st.Put(testCtx(t), layout.ObjectKey("2026-11-10", "i", 1, 0, false), []byte(strings.Join(lines, "\n")+"\n"), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	got, stats := readAll(t, st, sessions.Query{From: "2026-11-10"}, sessions.ReadOptions{})
	if len(got) != 1 || !strings.Contains(got[0], `"status":"closed"`) || !strings.Contains(got[0], `"ended_at":"2026-11-10T02:00:00`) {
		t.Errorf("got %v (stats %+v), want one closed session ended at 02:00", got, stats)
	}
}
