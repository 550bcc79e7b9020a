package sessions

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
)

// in is one archived record fed to the Pairer.
type in struct {
	day    string // partition day; "" = the UTC day of at
	domain string // "" = d.example.com
	stream string
	event  string
	pts    string // publish_timestamp as raw JSON
	at     string // received_at
	sig    string // "" = none
	client string // client_ip ("" = 10.0.0.1): a repeat differs here
	node   string // node_ip ("" = absent)
}

func (r in) ev() readback.Event {
	domain := r.domain
	if domain == "" {
		domain = "d.example.com"
	}
	client := r.client
	if client == "" {
		client = "10.0.0.1"
	}
	at, err := time.Parse(time.RFC3339Nano, r.at)
	if err != nil {
		panic(err)
	}
	sig := r.sig
	if sig == "" {
		sig = layout.SignatureNone
	}
	node := ""
	if r.node != "" {
		node = fmt.Sprintf(`,"node_ip":%q`, r.node)
	}
	body := fmt.Appendf(nil, `{"domain":%q,"app":"live","stream":%q,"client_ip":%q%s,"publish_timestamp":%s,"event":%q}`, domain, r.stream, client, node, r.pts, r.event)
	line := layout.AppendRecord(nil, body, layout.Archive{ReceivedAt: at, Signature: sig, PublishTime: layout.ParsePublishTimestamp([]byte(r.pts)), Instance: "i"})
	e, err := readback.ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		panic(err)
	}
	return e
}

func (r in) partition() string {
	if r.day != "" {
		return r.day
	}
	return r.at[:10]
}

// pairAll pairs recs and returns the sessions as JSON lines, the form users see.
func pairAll(t *testing.T, q Query, opt Options, maxRuns int, recs []in) ([]string, Stats) {
	t.Helper()
	p, err := NewPairer(q, opt)
	if err != nil {
		t.Fatal(err)
	}
	p.sorter.maxRuns = maxRuns
	for _, r := range recs {
		if err := p.Add(r.partition(), r.ev()); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	st, err := p.Finish(func(s Session) error {
		got = append(got, string(s.AppendJSON(nil)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

const (
	t0  = 1794268800     // 2026-11-10T00:00:00Z
	pts = `"1794301200"` // 2026-11-10T09:00:00Z
)

func line(stream string, ptsSec int64, ended string, dur string, status string, verified bool) string {
	started := time.Unix(ptsSec, 0).UTC().Format(time.RFC3339)
	if ended != "null" {
		ended = `"` + ended + `"`
	}
	return fmt.Sprintf(`{"domain":"d.example.com","app":"live","stream":%q,"publish_timestamp":%d,"started_at":%q,"ended_at":%s,"duration_s":%s,"status":%q,"verified":%t,"client_ip":"10.0.0.1","node_ip":null,"done_client_ip":null,"done_node_ip":null}`,
		stream, ptsSec, started, ended, dur, status, verified)
}

// withIPs replaces a line's from-where fields (JSON values: "null" or a quoted string).
func withIPs(l, client, node, doneClient, doneNode string) string {
	return strings.Replace(l, `"client_ip":"10.0.0.1","node_ip":null,"done_client_ip":null,"done_node_ip":null`,
		fmt.Sprintf(`"client_ip":%s,"node_ip":%s,"done_client_ip":%s,"done_node_ip":%s`, client, node, doneClient, doneNode), 1)
}

func TestPairing(t *testing.T) {
	q := Query{From: "2026-11-10", To: "2026-11-11"} // reads 11-09 .. 11-12
	const p9 = 1794301200
	cases := []struct {
		name string
		q    *Query
		recs []in
		want []string
		st   Stats
	}{
		{name: "closed", recs: []in{
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01.5Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00.25Z"},
		}, want: []string{line("s", p9, "2026-11-10T10:00:00.250000000Z", "3600", "closed", false)}},
		{name: "crosses midnight", recs: []in{
			{stream: "s", event: "PUBLISH", pts: `"1794354600"`, at: "2026-11-10T23:50:00Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794354600"`, at: "2026-11-11T00:20:00.9Z"},
		}, want: []string{line("s", 1794354600, "2026-11-11T00:20:00.900000000Z", "1800", "closed", false)}},
		{name: "partner in the day before the range", recs: []in{
			{stream: "s", event: "PUBLISH", pts: `"1794263600"`, at: "2026-11-09T22:33:20Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794263600"`, at: "2026-11-10T01:00:00Z"},
		}, want: []string{line("s", 1794263600, "2026-11-10T01:00:00.000000000Z", "8800", "closed", false)}},
		{name: "partner in the day after the range", recs: []in{
			{stream: "s", event: "PUBLISH", pts: `"1794438000"`, at: "2026-11-11T23:00:00Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794438000"`, at: "2026-11-12T05:00:00Z"},
		}, want: []string{line("s", 1794438000, "2026-11-12T05:00:00.000000000Z", "21600", "closed", false)}},
		{name: "wholly in the margin days: not listed", recs: []in{
			{stream: "a", event: "PUBLISH", pts: `"1794213600"`, at: "2026-11-09T08:40:00Z"},
			{stream: "a", event: "PUBLISH_DONE", pts: `"1794213600"`, at: "2026-11-09T09:00:00Z"},
			{stream: "b", event: "PUBLISH", pts: `"1794473600"`, at: "2026-11-12T08:53:20Z"},
			{stream: "b", event: "PUBLISH_DONE", pts: `"1794473600"`, at: "2026-11-12T09:00:00Z"},
			{stream: "c", event: "PUBLISH", pts: `"1794473600"`, at: "2026-11-12T08:53:20Z"},
		}},
		{name: "listed through a redelivered copy in the range", recs: []in{
			{stream: "s", event: "PUBLISH", pts: `"1794263600"`, at: "2026-11-09T22:33:20Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794263600"`, at: "2026-11-09T23:59:00Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794263600"`, at: "2026-11-10T00:01:00Z"},
		}, want: []string{line("s", 1794263600, "2026-11-09T23:59:00.000000000Z", "5140", "closed", false)}},
		{name: "open", recs: []in{
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", sig: "verified"},
		}, want: []string{line("s", p9, "null", "null", "open", true)}},
		{name: "end only", recs: []in{
			{stream: "s", event: "PUBLISH_DONE", pts: `"1794000000"`, at: "2026-11-10T09:00:01Z"},
		}, want: []string{line("s", 1794000000, "2026-11-10T09:00:01.000000000Z", "301201", "end_only", false)}},
		{name: "redeliveries count once, first receipt wins", recs: []in{
			{stream: "s", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:30Z"},
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:05Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
		}, want: []string{line("s", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false)}},
		{name: "replicas across midnight count once", recs: []in{
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T23:59:59.9Z"},
			{stream: "s", event: "PUBLISH_DONE", pts: pts, at: "2026-11-11T00:00:00.1Z"},
		}, want: []string{line("s", p9, "2026-11-10T23:59:59.900000000Z", "53999", "closed", false)}},
		{name: "a repeat (same identity, different body) counts once", recs: []in{
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:09Z", client: "10.9.9.9"},
		}, want: []string{line("s", p9, "null", "null", "open", false)}},
		{name: "seed quirk and a number pair with the plain string", recs: []in{
			{stream: "q", event: "PUBLISH", pts: `"1794301200,"`, at: "2026-11-10T09:00:01Z"},
			{stream: "q", event: "PUBLISH_DONE", pts: `1794301200`, at: "2026-11-10T09:30:00Z"},
			{stream: "r", event: "PUBLISH", pts: `" 1794301200"`, at: "2026-11-10T09:00:01Z"},
			{stream: "r", event: "PUBLISH_DONE", pts: `"1794301200000"`, at: "2026-11-10T09:30:00Z"}, // milliseconds
		}, want: []string{
			line("q", p9, "2026-11-10T09:30:00.000000000Z", "1800", "closed", false),
			line("r", p9, "2026-11-10T09:30:00.000000000Z", "1800", "closed", false),
		}},
		{name: "no usable publish_timestamp or another event: counted, not paired", recs: []in{
			{stream: "s", event: "PUBLISH", pts: `"abc"`, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH", pts: `null`, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH", pts: `"-5"`, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "RECORD_DONE", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "s", event: "PUBLISH", pts: `"abc"`, at: "2026-11-09T09:00:01Z"}, // margin day: not counted
		}, st: Stats{Records: 5, Unusable: 3, NotPaired: 1}},
		{name: "verified only when every copy of both callbacks is", recs: []in{
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", sig: "verified"},
			{stream: "a", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z", sig: "verified"},
			{stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", sig: "verified"},
			{stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
			{stream: "c", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", sig: "verified"},
			{stream: "c", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z", sig: "verified"},
			{stream: "c", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:02Z"}, // unsigned copy
		}, want: []string{
			line("a", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", true),
			line("b", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false),
			line("c", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false),
		}},
		{name: "sorted by started_at, then domain, app, stream", recs: []in{
			{stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "z", event: "PUBLISH", pts: `"1794293600"`, at: "2026-11-10T09:00:01Z"},
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:02Z"},
		}, want: []string{
			line("z", 1794293600, "null", "null", "open", false),
			line("a", p9, "null", "null", "open", false),
			line("b", p9, "null", "null", "open", false),
		}},
		{name: "from where: the earliest copy's IPs, the PUBLISH_DONE's where they differ, end_only from the PUBLISH_DONE", recs: []in{
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:05Z", client: "10.0.0.9", node: "10.1.0.9"}, // a later repeat
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", client: "10.0.0.5", node: "10.1.0.1"},
			{stream: "a", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z", client: "10.0.0.5", node: "10.1.0.2"},
			{stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z", client: "10.0.0.7", node: "10.1.0.7"},
			{stream: "c", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", client: "10.0.0.3", node: "10.1.0.3"},
			{stream: "c", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z", client: "10.0.0.4", node: "10.1.0.3"},
			// Two copies at the same instant: the smaller wins, whichever is read first.
			{stream: "d", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", client: "10.0.0.8", node: "10.1.0.1"},
			{stream: "d", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z", client: "10.0.0.6", node: "10.1.0.1"},
		}, want: []string{
			withIPs(line("a", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false), `"10.0.0.5"`, `"10.1.0.1"`, "null", `"10.1.0.2"`),
			withIPs(line("b", p9, "2026-11-10T10:00:00.000000000Z", "3600", "end_only", false), `"10.0.0.7"`, `"10.1.0.7"`, "null", "null"),
			withIPs(line("c", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false), `"10.0.0.3"`, `"10.1.0.3"`, `"10.0.0.4"`, "null"),
			withIPs(line("d", p9, "null", "null", "open", false), `"10.0.0.6"`, `"10.1.0.1"`, "null", "null"),
		}},
		{name: "--event PUBLISH_DONE: sessions whose archive holds one", q: &Query{From: "2026-11-10", To: "2026-11-11", Filter: cli.Filter{Event: "PUBLISH_DONE"}}, recs: []in{
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
			{stream: "c", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
		}, want: []string{
			line("b", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false),
			line("c", p9, "2026-11-10T10:00:00.000000000Z", "3600", "end_only", false),
		}},
		{name: "--event PUBLISH: sessions whose archive holds one", q: &Query{From: "2026-11-10", To: "2026-11-11", Filter: cli.Filter{Event: "PUBLISH"}}, recs: []in{
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
			{stream: "c", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
		}, want: []string{
			line("a", p9, "null", "null", "open", false),
			line("b", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false),
		}},
		{name: "filters", q: &Query{From: "2026-11-10", To: "2026-11-11", Filter: cli.Filter{Domain: "d.example.com", Stream: "b"}, Status: Closed}, recs: []in{
			{stream: "a", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "a", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
			{stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
			{stream: "b", event: "PUBLISH", pts: `"1794303600"`, at: "2026-11-10T10:00:01Z"},
			{domain: "x.example.com", stream: "b", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:01Z"},
			{domain: "x.example.com", stream: "b", event: "PUBLISH_DONE", pts: pts, at: "2026-11-10T10:00:00Z"},
		}, want: []string{line("b", p9, "2026-11-10T10:00:00.000000000Z", "3600", "closed", false)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			qq := q
			if tc.q != nil {
				qq = *tc.q
			}
			// Every case must give the same answer however small the sort buffer (spill files),
			// also when the spill files are merged on the way (maxRuns 2).
			for _, v := range []struct{ spill, maxRuns int }{{0, 0}, {1, 0}, {2, 0}, {1, 2}} {
				got, st := pairAll(t, qq, Options{SpillAfter: v.spill, TempDir: t.TempDir()}, v.maxRuns, sortedByDay(tc.recs))
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("SpillAfter %d maxRuns %d:\ngot\n%s\nwant\n%s", v.spill, v.maxRuns, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
				if tc.st.Records > 0 && (st.Unusable != tc.st.Unusable || st.NotPaired != tc.st.NotPaired || st.Records != tc.st.Records) {
					t.Errorf("stats %+v, want %+v", st, tc.st)
				}
			}
		})
	}
}

// sortedByDay keeps the case's order within a day (objects are not in time order) but feeds
// the days in order, as Read does.
func sortedByDay(recs []in) []in {
	var out []in
	for _, d := range []string{"2026-11-09", "2026-11-10", "2026-11-11", "2026-11-12"} {
		for _, r := range recs {
			if r.partition() == d {
				out = append(out, r)
			}
		}
	}
	return out
}

func TestSessionJSONIsValid(t *testing.T) {
	s := Session{Domain: "d\"\n<x>", App: "live", Stream: "s\xff", PublishTimestamp: t0, EndedAt: time.Unix(t0+61, 5).UTC(), Status: Closed, Verified: true}
	var m map[string]any
	b := s.AppendJSON(nil)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if m["domain"] != "d\"\n<x>" || m["stream"] != "s\uFFFD" || m["duration_s"].(json.Number) != "61" || m["ended_at"] != "2026-11-10T00:01:01.000000005Z" {
		t.Errorf("decoded %v", m)
	}
	keys := []string{}
	d2 := json.NewDecoder(bytes.NewReader(b))
	if _, err := d2.Token(); err != nil {
		t.Fatal(err)
	}
	for d2.More() {
		k, err := d2.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d2.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(keys, ",") != strings.Join(Columns, ",") {
		t.Errorf("keys %v, want %v", keys, Columns)
	}
}

func TestDaysOutOfOrder(t *testing.T) {
	p, err := NewPairer(Query{From: "2026-11-10"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Add("2026-11-10", in{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-10T09:00:00Z"}.ev()); err != nil {
		t.Fatal(err)
	}
	if err := p.Add("2026-11-09", in{stream: "s", event: "PUBLISH", pts: pts, at: "2026-11-09T09:00:00Z"}.ev()); err == nil || !strings.Contains(err.Error(), "in order") {
		t.Errorf("out-of-order day: %v", err)
	}
}

func TestQueryDays(t *testing.T) {
	for _, tc := range []struct {
		q       Query
		want    string
		wantErr string
	}{
		{q: Query{From: "2026-11-10"}, want: "2026-11-09 2026-11-10 2026-11-11"},
		{q: Query{From: "2026-12-31", To: "2027-01-01"}, want: "2026-12-30 2026-12-31 2027-01-01 2027-01-02"},
		{q: Query{From: "2028-03-01"}, want: "2028-02-29 2028-03-01 2028-03-02"},
		{q: Query{}, wantErr: "missing --from"},
		{q: Query{From: "2026-11-10", To: "2026-11-01"}, wantErr: "before"},
		{q: Query{From: "2026-13-01"}, wantErr: "invalid --from"},
		{q: Query{From: "2026-11-10", Status: "closd"}, wantErr: "invalid --status"},
		{q: Query{From: "2020-01-01", To: "2026-01-01"}, wantErr: "at most"},
	} {
		days, err := tc.q.Days()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: error %v, want %q", tc.q, err, tc.wantErr)
			}
			continue
		}
		if err != nil || strings.Join(days, " ") != tc.want {
			t.Errorf("%+v: %v %v, want %s", tc.q, days, err, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for sec, want := range map[int64]string{0: "0s", 45: "45s", 60: "1m00s", 725: "12m05s", 3600: "1h00m00s", 10925: "3h02m05s", 86400 + 3*3600 + 4*60 + 5: "1d03h04m", -90: "-1m30s"} {
		if got := HumanDuration(sec); got != want {
			t.Errorf("HumanDuration(%d) = %q, want %q", sec, got, want)
		}
	}
}

func TestWriterFormats(t *testing.T) {
	ss := []Session{
		{Domain: "d.example.com", App: "live", Stream: "a", PublishTimestamp: t0, EndedAt: time.Unix(t0+3725, 0).UTC(), Status: Closed, Verified: true,
			ClientIP: "10.0.0.1", NodeIP: "10.1.0.1", DoneNodeIP: "10.1.0.2"},
		{Domain: "d.example.com", App: "live", Stream: "=cmd|' /C calc'!A0", PublishTimestamp: t0 + 10, Status: Open, ClientIP: "2001:db8::1"},
		{Domain: "d.example.com", App: "live", Stream: "evil\x1b]0;pwned\x07\u202e", PublishTimestamp: t0 + 20, EndedAt: time.Unix(t0+30, 0).UTC(), Status: EndOnly,
			ClientIP: "\x1b[2J", NodeIP: "10.1.0.3"},
	}
	loc := time.UTC
	render := func(format string) string {
		var b bytes.Buffer
		w, err := NewWriterIn(&b, format, loc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if err := w.Write(s); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	csvOut := render(FormatCSV)
	wantCSV := "domain,app,stream,publish_timestamp,started_at,ended_at,duration_s,status,verified,client_ip,node_ip,done_client_ip,done_node_ip\n" +
		"d.example.com,live,a,1794268800,2026-11-10T00:00:00Z,2026-11-10T01:02:05.000000000Z,3725,closed,true,10.0.0.1,10.1.0.1,,10.1.0.2\n" +
		"d.example.com,live,=cmd|' /C calc'!A0,1794268810,2026-11-10T00:00:10Z,,,open,false,2001:db8::1,,,\n" +
		"d.example.com,live,evil\x1b]0;pwned\x07\u202e,1794268820,2026-11-10T00:00:20Z,2026-11-10T00:00:30.000000000Z,10,end_only,false,\x1b[2J,10.1.0.3,,\n"
	if csvOut != wantCSV {
		t.Errorf("csv:\n%q\nwant\n%q", csvOut, wantCSV)
	}
	table := render(FormatTable)
	if strings.ContainsAny(table, "\x1b\x07\u202e") {
		t.Errorf("table passes control characters through:\n%q", table)
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("table: want a header, 3 rows, a blank line and the summary:\n%s", table)
	}
	// Aligned while the IP cells fit their 15 columns (an IPv4 address; a longer IPv6 address or
	// a changed IP pushes the rest of its row, as the table streams).
	col := strings.Index(lines[0], "DOMAIN/APP/STREAM")
	for _, l := range lines[2:4] {
		if strings.Index(l, "d.example.com/") != col {
			t.Errorf("table not aligned:\n%s", table)
		}
	}
	if !strings.Contains(lines[1], "1h02m05s") || !strings.Contains(lines[1], "yes") || !strings.Contains(lines[1], " 10.0.0.1 ") || !strings.Contains(lines[1], " 10.1.0.1->10.1.0.2 ") {
		t.Errorf("row 1: %q", lines[1])
	}
	if !strings.Contains(lines[2], " 2001:db8::1 ") || !strings.Contains(lines[3], " ?[2J ") {
		t.Errorf("rows 2, 3: IPs %q %q", lines[2], lines[3])
	}
	if want := "3 sessions: 1 closed, 1 open, 1 end_only; streamed 1h02m05s (closed sessions)"; lines[5] != want {
		t.Errorf("summary %q, want %q", lines[5], want)
	}
	sc := bufio.NewScanner(strings.NewReader(render(FormatJSONL)))
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("jsonl line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 3 {
		t.Errorf("jsonl: %d lines", n)
	}
	// --tz: the same instants in another zone, with its offset, in every format.
	loc, _ = time.LoadLocation("Asia/Shanghai")
	for format, want := range map[string][]string{
		FormatJSONL: {`"started_at":"2026-11-10T08:00:00+08:00","ended_at":"2026-11-10T09:02:05.000000000+08:00"`},
		FormatCSV:   {",2026-11-10T08:00:00+08:00,2026-11-10T09:02:05.000000000+08:00,3725,"},
		FormatTable: {"2026-11-10T08:00:00+08:00  2026-11-10T09:02:05+08:00    1h02m05s"},
	} {
		if out := render(format); !strings.Contains(out, want[0]) || strings.Contains(out, "Z") {
			t.Errorf("--tz Asia/Shanghai %s: want %q and no UTC times:\n%s", format, want[0], out)
		}
	}
	if _, err := NewWriter(&bytes.Buffer{}, "xml"); err == nil || !strings.Contains(err.Error(), "table, jsonl or csv") {
		t.Errorf("bad format: %v", err)
	}
}

// TestJoinIPs: any bytes in a callback's client_ip and node_ip come back as they were (a NUL or
// a length-like prefix cannot shift one into the other), and a damaged value gives empty ones.
func TestJoinIPs(t *testing.T) {
	for _, c := range [][2]string{{"", ""}, {"10.0.0.1", "10.1.0.1"}, {"a\x00b", "c"}, {"", "\x05xyz"}, {strings.Repeat("x", 300), "2001:db8::1"}} {
		s := seen{from: joinIPs(c[0], c[1])}
		if client, node := s.ips(); client != c[0] || node != c[1] {
			t.Errorf("joinIPs(%q, %q) comes back as %q, %q", c[0], c[1], client, node)
		}
	}
	for _, bad := range []string{"", "\x09short", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"} {
		if client, node := (&seen{from: bad}).ips(); client != "" || node != "" {
			t.Errorf("damaged %q gives %q, %q", bad, client, node)
		}
	}
}
