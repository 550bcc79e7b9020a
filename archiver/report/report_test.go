package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone test needs no system database

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/report"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func fileStore(t *testing.T) (storage.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(testCtx(t), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// payload pulls the embedded sessions out of a page.
func payload(t *testing.T, page string) map[string]any {
	t.Helper()
	m := regexp.MustCompile(`(?s)<script id="data" type="application/json">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("the page has no data script")
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(m[1]), &p); err != nil {
		t.Fatalf("the embedded data is not JSON: %v", err)
	}
	return p
}

// TestCollectMatchesSessions: the report counts and embeds exactly the sessions `archiver
// sessions` lists, in its order, with their starts, durations, statuses and IPs.
func TestCollectMatchesSessions(t *testing.T) {
	st, _ := fileStore(t)
	if _, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 4, Streams: 12, Seed: 3, MeanDuration: 5 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []sessions.Query{
		{From: "2026-11-02", To: "2026-11-03"},
		{From: "2026-11-02", To: "2026-11-03", Filter: cli.Filter{Stream: "room_3"}},
		{From: "2026-11-01", To: "2026-11-04", Status: sessions.Open},
	} {
		var want []sessions.Session
		if _, err := sessions.Read(testCtx(t), st, q, sessions.ReadOptions{}, func(s sessions.Session) error { want = append(want, s); return nil }); err != nil {
			t.Fatal(err)
		}
		d, err := report.Collect(testCtx(t), st, q, time.UTC, sessions.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Cols
		if d.Summary.Sessions != len(want) || len(c.Start) != len(want) || len(want) == 0 {
			t.Fatalf("%+v: %d sessions in the summary, %d embedded; archiver sessions lists %d", q, d.Summary.Sessions, len(c.Start), len(want))
		}
		var closed, open, endOnly int
		var streamed int64
		t0 := c.T0
		for i, s := range want {
			t0 += c.Start[i]
			name := c.Streams[c.Stream[i]]
			ip := func(x int32) string {
				if x == 0 {
					return ""
				}
				return c.IPs[x-1]
			}
			dur, ok := s.DurationS()
			if !ok {
				dur = -1
			}
			status := []sessions.Status{sessions.Closed, sessions.Open, sessions.EndOnly}[c.Flags[i]&3]
			if t0 != s.PublishTimestamp || c.Dur[i] != dur || name != [3]string{s.Domain, s.App, s.Stream} || status != s.Status ||
				(c.Flags[i]&4 != 0) != s.Verified || ip(c.Client[i]) != s.ClientIP || ip(c.Node[i]) != s.NodeIP || ip(c.DClient[i]) != s.DoneClientIP || ip(c.DNode[i]) != s.DoneNodeIP {
				t.Fatalf("%+v: session %d embedded as start %d dur %d %v %s %v, archiver sessions: %+v", q, i, t0, c.Dur[i], name, status, c.Flags[i], s)
			}
			switch s.Status {
			case sessions.Closed:
				closed++
				streamed += dur
			case sessions.Open:
				open++
			default:
				endOnly++
			}
		}
		if d.Summary.Closed != closed || d.Summary.Open != open || d.Summary.EndOnly != endOnly || d.Summary.StreamedS != streamed {
			t.Errorf("%+v: summary %+v; want %d closed, %d open, %d end_only, %ds", q, d.Summary, closed, open, endOnly, streamed)
		}
		heat := 0
		for _, row := range d.Heat.Counts {
			for _, n := range row {
				heat += n
			}
		}
		if heat != len(want) {
			t.Errorf("%+v: the heat map counts %d starts, want %d", q, heat, len(want))
		}
	}
}

// TestRenderIsSelfContainedAndEscaped: names from callbacks cannot become markup or script, and
// the page refers to nothing outside itself.
func TestRenderIsSelfContainedAndEscaped(t *testing.T) {
	evil := `</script><script>alert(1)</script><img src=x onerror=alert(2)>`
	d := &report.Data{From: "2026-11-10", To: "2026-11-10", Loc: time.UTC,
		RangeStart: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), RangeEnd: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC),
		Top: []report.StreamTotal{{Name: "d/live/" + evil, Sessions: 1, StreamedS: 60}},
		Cols: report.Columns{T0: 1794301200, Streams: [][3]string{{"d", "live", evil}}, IPs: []string{evil},
			Start: []int64{0}, Dur: []int64{60}, Stream: []int32{0}, Client: []int32{1}, Node: []int32{0}, DClient: []int32{0}, DNode: []int32{0}, Flags: []int8{0}},
		Provenance: report.Provenance{Command: "archiver report --stream '" + evil + "'", Store: "file:///x", Generated: time.Unix(1794301300, 0), Version: "1.2.3"},
	}
	d.Summary.Sessions = 1
	d.Integrity = &report.Integrity{Summary: verify.Summary{Objects: 2, Problems: 2},
		Days: []report.DayCheck{{Day: "2026-11-10", InRange: true, Objects: 2, Count: 1, Problems: []verify.Problem{{Kind: "unlisted", Key: "dt=2026-11-10/" + evil, Detail: evil}}},
			{Day: "2026-11-11", Objects: 0}},
		Other: []verify.Problem{{Kind: "gap", Key: "_digests/x", Detail: evil}}}
	var b bytes.Buffer
	if err := report.Render(&b, d); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, s := range []string{`<b>0/1</b>`, "<code>unlisted</code> dt=2026-11-10/&lt;/script&gt;", "2026-11-11 (read around the range)", "<code>gap</code> _digests/x"} {
		if !strings.Contains(page, s) {
			t.Errorf("the integrity section lacks %q", s)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") {
		t.Error("a stream name became markup")
	}
	if n := strings.Count(page, "<script"); n != 2 {
		t.Errorf("%d script elements, want the data and the code", n)
	}
	for _, ref := range []string{"http://", "https://", ` src="`, ` href="`, "@import", "url("} {
		if i := strings.Index(page, ref); i >= 0 && !strings.HasPrefix(page[i:], "http://www.w3.org/2000/svg") {
			t.Errorf("the page refers to something outside itself: %q", page[max(0, i-40):min(len(page), i+60)])
		}
	}
	if !strings.Contains(page, `default-src 'none'`) {
		t.Error("no Content-Security-Policy forbidding loads")
	}
	p := payload(t, page)
	if got := p["cols"].(map[string]any)["streams"].([]any)[0].([]any)[2]; got != evil {
		t.Errorf("the stream name came through as %q", got)
	}
	for _, s := range []string{"1.2.3", "file:///x", "2026-11-10"} {
		if !strings.Contains(page, s) {
			t.Errorf("provenance lacks %q", s)
		}
	}
}

func TestRunUsage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.html")
	key := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--out", out}, "missing --from"},
		{[]string{"--from", "2026-11-01"}, "missing --out"},
		{[]string{"--from", "tomorrow", "--out", out}, `invalid --from "tomorrow"`},
		{[]string{"--from", "2026-11-01", "--out", out, "--tz", "Nowhere/City"}, `invalid --tz "Nowhere/City"`},
		{[]string{"--from", "2026-11-01", "--out", out, "--event", "done"}, `invalid --event "done"`},
		{[]string{"--from", "2026-11-01", "--out", out, "--status", "live"}, `invalid --status "live"`},
		{[]string{"--from", "2026-11-01", "--out", out, "--public-key", key}, "no PEM block"},
		{[]string{"--from", "2026-11-01", "--out", out, "x"}, `unexpected argument "x"`},
		{[]string{"--from", "2026-11-01", "--out", filepath.Join(out, "nope", "r.html")}, "does not exist"},
	} {
		var o, e bytes.Buffer
		if code := report.Run(testCtx(t), tc.args, &o, &e); code != 2 || !strings.Contains(e.String(), tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, e.String(), tc.msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a usage error wrote the report")
	}
}

// TestRunWrites: the command writes the page, names it and its size, and the page's count is
// the sessions'.
func TestRunWrites(t *testing.T) {
	st, dir := fileStore(t)
	if _, err := sessionstest.Write(testCtx(t), st, sessionstest.Spec{From: "2026-11-01", Days: 3, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	var o, e bytes.Buffer
	if code := report.Run(testCtx(t), []string{"--store", "file://" + dir, "--from", "2026-11-02", "--out", out, "--tz", "Asia/Shanghai"}, &o, &e); code != 0 {
		t.Fatalf("exit %d: %s", code, e.String())
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if _, err := sessions.Read(testCtx(t), st, sessions.Query{From: "2026-11-02"}, sessions.ReadOptions{}, func(sessions.Session) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<b id="count">`+strconv.Itoa(n)+`</b>`) || !strings.Contains(o.String(), out) || n == 0 {
		t.Errorf("%d sessions; stdout %q", n, o.String())
	}
	if !strings.Contains(string(page), "Times in Asia/Shanghai") || payload(t, string(page))["zone"] != "Asia/Shanghai" {
		t.Error("--tz not in the page")
	}
}

// TestPayloadArrays: every column reaches the page as a JSON array of numbers ([]uint8 would
// become a base64 string, and the script would read every status as closed).
func TestPayloadArrays(t *testing.T) {
	d := &report.Data{From: "2026-11-10", To: "2026-11-10", Loc: time.UTC,
		RangeStart: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), RangeEnd: time.Date(2026, 11, 11, 0, 0, 0, 0, time.UTC),
		Cols: report.Columns{T0: 1794301200, Streams: [][3]string{{"d", "live", "s"}}, Start: []int64{0, 5}, Dur: []int64{60, -1},
			Stream: []int32{0, 0}, Client: []int32{0, 0}, Node: []int32{0, 0}, DClient: []int32{0, 0}, DNode: []int32{0, 0}, Flags: []int8{4, 2}}}
	var b bytes.Buffer
	if err := report.Render(&b, d); err != nil {
		t.Fatal(err)
	}
	cols := payload(t, b.String())["cols"].(map[string]any)
	for _, k := range []string{"s", "d", "k", "c", "n", "dc", "dn", "f"} {
		a, ok := cols[k].([]any)
		if !ok || len(a) != 2 {
			t.Errorf("column %s is %T %v, want an array of 2 numbers", k, cols[k], cols[k])
		}
	}
	// No sessions: empty arrays, never null.
	b.Reset()
	d.Cols = report.Columns{}
	if err := report.Render(&b, d); err != nil {
		t.Fatal(err)
	}
	cols = payload(t, b.String())["cols"].(map[string]any)
	for _, k := range []string{"streams", "ips", "s", "d", "k", "c", "n", "dc", "dn", "f"} {
		if a, ok := cols[k].([]any); !ok || len(a) != 0 {
			t.Errorf("no sessions: column %s is %T %v, want []", k, cols[k], cols[k])
		}
	}
}

// TestHeatRowsFollowTheRange: a session begun years before the range (its PUBLISH_DONE is in
// it) is counted in an "earlier" row, not by drawing every day since; the timeline still spans
// the range only.
func TestHeatRowsFollowTheRange(t *testing.T) {
	st, _ := fileStore(t)
	put := func(stream, event string, pts int64, at time.Time) {
		t.Helper()
		pt := time.Unix(pts, 0).UTC()
		ts := strconv.FormatInt(pts, 10)
		body := []byte(`{"domain":"d.example.com","app":"live","stream":"` + stream + `","client_ip":"10.0.0.1","publish_timestamp":"` + ts + `","event":"` + event + `"}`)
		line := layout.AppendRecord(nil, body, layout.Archive{ReceivedAt: at, EventID: layout.EventID("d.example.com", "live", stream, event, ts),
			Signature: layout.SignatureNone, PublishTime: &pt, Instance: "t"})
		obj, err := layout.EncodeObject(line, false)
		if err == nil {
			err = st.Put(testCtx(t), layout.ObjectKey(layout.Day(at, nil), "t-"+stream+"-"+event, 1, 0, false), obj, layout.ContentType)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	put("old", "PUBLISH_DONE", 1587954134, time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC))
	put("new", "PUBLISH", time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC).Unix(), time.Date(2026, 11, 10, 8, 0, 1, 0, time.UTC))
	d, err := report.Collect(testCtx(t), st, sessions.Query{From: "2026-11-10"}, time.UTC, sessions.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(d.Heat.Days, " "); got != "earlier 2026-11-09 2026-11-10" || d.Heat.Counts[0][2] != 1 || d.Heat.Counts[2][8] != 1 {
		t.Errorf("heat rows %q, counts %v", got, d.Heat.Counts)
	}
	var b bytes.Buffer
	if err := report.Render(&b, d); err != nil {
		t.Fatal(err)
	}
	if p := payload(t, b.String()); p["rangeStart"].(float64) != float64(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC).Unix()) {
		t.Errorf("the timeline starts at %v, not at the range", p["rangeStart"])
	}
}

// TestHeatCellsAreWallClockHours: on a day the zone's offset changes (Europe/Berlin, 2026-10-25,
// 25 hours long), a heat-map cell zooms to that wall-clock hour, not to midnight plus h hours.
func TestHeatCellsAreWallClockHours(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	st, _ := fileStore(t)
	at := time.Date(2026, 10, 25, 12, 0, 0, 0, berlin)
	pt := at.UTC()
	ts := strconv.FormatInt(pt.Unix(), 10)
	body := []byte(`{"domain":"d.example.com","app":"live","stream":"s","client_ip":"10.0.0.1","publish_timestamp":"` + ts + `","event":"PUBLISH"}`)
	line := layout.AppendRecord(nil, body, layout.Archive{ReceivedAt: at.UTC(), EventID: layout.EventID("d.example.com", "live", "s", "PUBLISH", ts),
		Signature: layout.SignatureNone, PublishTime: &pt, Instance: "t"})
	obj, err := layout.EncodeObject(line, false)
	if err == nil {
		err = st.Put(testCtx(t), layout.ObjectKey(layout.Day(at, nil), "t", 1, 0, false), obj, layout.ContentType)
	}
	if err != nil {
		t.Fatal(err)
	}
	d, err := report.Collect(testCtx(t), st, sessions.Query{From: "2026-10-25"}, berlin, sessions.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := report.Render(&b, d); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`data-t="%d"><title>2026-10-25 12:00: 1 session starts`, at.Unix())
	if !strings.Contains(b.String(), want) {
		i := strings.Index(b.String(), "2026-10-25 12:00")
		t.Fatalf("the 12:00 cell of 2026-10-25 does not zoom to %s (%d); page around it: %q", at, at.Unix(), b.String()[max(0, i-80):i+40])
	}
}
