package readme

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

var sqlDateRE = regexp.MustCompile(`DATE '(\d{4}-\d{2}-\d{2})'`)

// TestSessionsSQL: the README's DuckDB query of "Who streamed when" lists, row by row and cell
// by cell, what `archiver sessions` (the sessions package) lists, on a generated month with every
// kind of session (its dates as the README writes them) and on the archive the real archiver
// wrote (dates set to its day). Mutations of the query must be caught, so that the comparison
// itself is known to see the parts of the query that are easy to get wrong.
func TestSessionsSQL(t *testing.T) {
	testenv.Cgo(t, duckDB != nil)
	var b block
	for _, c := range docBlocks(t) {
		if c.Lang == "sql" && strings.Contains(c.Text, "PUBLISH_DONE") && strings.Contains(c.Text, "duration_s") {
			b = c
		}
	}
	if b.Text == "" {
		t.Fatal("README.md and the guides have no DuckDB query of sessions (a ```sql block computing duration_s from PUBLISH_DONE)")
	}
	if !strings.Contains(b.Text, "'archive/dt=") {
		t.Fatalf("%s: the query does not read the archive as 'archive/dt=...'", b.At(b.Line))
	}
	// The range's two dates, first where sessions are listed, then where partners are read.
	dates := sqlDateRE.FindAllStringSubmatch(b.Text, -1)
	if len(dates) != 4 || dates[0][1] != dates[2][1] || dates[1][1] != dates[3][1] {
		t.Fatalf("%s: want the range's two dates twice each (listing, then reading with the day around), got %v", b.At(b.Line), dates)
	}
	from, to := dates[0][1], dates[1][1]
	gen := &testArchive{Dir: t.TempDir()} // Day "": localize keeps the README's dates
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + gen.Dir})
	if err != nil {
		t.Fatal(err)
	}
	// Traffic from two days before the range to two after, so sessions cross its edges.
	first, err1 := time.Parse(layout.DayLayout, from)
	last, err2 := time.Parse(layout.DayLayout, to)
	if err1 != nil || err2 != nil || last.Before(first) {
		t.Fatalf("%s: the range %s..%s is not two days in order", b.At(b.Line), from, to)
	}
	if _, err := sessionstest.Write(ctx, st, sessionstest.Spec{From: layout.Day(first.AddDate(0, 0, -2), nil),
		Days: int(last.Sub(first).Hours()/24) + 5, Streams: 8, MeanDuration: 3 * time.Hour, MeanGap: 2 * time.Hour,
		Seed: 13, Gzip: true, RecordsPerObject: 500}); err != nil {
		t.Fatal(err)
	}
	addUnsignedRepeat(ctx, t, st, readSessions(t, gen.Dir, from, to))
	served := archive(t)
	archives := []struct {
		name     string
		arch     *testArchive
		from, to string
	}{
		{"generated", gen, from, to},
		{"written by archiver serve", served, served.Day, served.Day},
	}
	for _, a := range archives {
		for _, d := range diffSessions(t, a.arch.localize(b.Text), a.arch.Dir, a.from, a.to) {
			t.Errorf("%s: on the %s archive: %s", b.At(b.Line), a.name, d)
		}
	}

	for _, m := range []struct{ name, old, new string }{
		{"no partner day before the range", "DATE '" + from + "' - 1", "DATE '" + from + "'"},
		{"no partner day after the range", "DATE '" + to + "' + 1", "DATE '" + to + "'"},
		{"sessions of the days around listed", "WHERE listed\n", "\n"},
		{"the last copy of a PUBLISH_DONE", "min(received_at)", "max(received_at)"},
		{"one verified copy is enough", "bool_and(signature = 'verified')", "bool_or(signature = 'verified')"},
		{"ended_at as a timestamp", "       ended_at,", "       CAST(ended_at AS TIMESTAMP) AS ended_at,"},
		{"the PUBLISH_DONE's IPs first", "coalesce(pub_ip, done_ip)[1]", "coalesce(done_ip, pub_ip)[1]"},
		{"the last copy's IPs", "arg_min([client_ip, node_ip], [received_at, client_ip, node_ip]) FILTER (WHERE event = 'PUBLISH')", "arg_max([client_ip, node_ip], [received_at, client_ip, node_ip]) FILTER (WHERE event = 'PUBLISH')"},
		{"done_node_ip always", "CASE WHEN started AND pub_ip[2] IS DISTINCT FROM done_ip[2] THEN done_ip[2] END", "done_ip[2]"},
	} {
		if !strings.Contains(b.Text, m.old) {
			t.Errorf("%s: mutation %q: the query no longer has %q; update the mutation", b.At(b.Line), m.name, m.old)
			continue
		}
		caught := false
		for _, a := range archives {
			q := a.arch.localize(strings.Replace(b.Text, m.old, m.new, 1))
			caught = caught || len(diffSessions(t, q, a.arch.Dir, a.from, a.to)) > 0
		}
		if !caught {
			t.Errorf("mutation %q of the README query (%q -> %q) lists the same sessions on both archives: the comparison misses it", m.name, m.old, m.new)
		}
	}
}

// diffSessions runs query in DuckDB and describes how its answer differs from the sessions
// package's for from..to on the file store dir (nil when it does not).
func diffSessions(t *testing.T, query, dir, from, to string) []string {
	t.Helper()
	cols, rows, err := duckDB(query)
	if err != nil {
		return []string{fmt.Sprintf("DuckDB: %v\nquery:\n%s", err, query)}
	}
	want := readSessions(t, dir, from, to)
	if strings.Join(cols, ",") != strings.Join(sessions.Columns, ",") {
		return []string{fmt.Sprintf("columns %v, `archiver sessions` prints %v", cols, sessions.Columns)}
	}
	var diffs []string
	if len(rows) != len(want) {
		diffs = append(diffs, fmt.Sprintf("DuckDB lists %d sessions, `archiver sessions` %d", len(rows), len(want)))
	}
	for r := range min(len(rows), len(want)) {
		exp := sessionCells(want[r])
		for c, col := range cols {
			got := "NULL"
			if rows[r][c] != nil {
				got = fmt.Sprint(rows[r][c])
			}
			if got != exp[c] && len(diffs) < 10 { // the first few say enough
				diffs = append(diffs, fmt.Sprintf("row %d column %s = %q, `archiver sessions` says %q", r+1, col, got, exp[c]))
			}
		}
	}
	return diffs
}

// readSessions is what the sessions package lists for from..to on the file store dir.
func readSessions(t *testing.T, dir, from, to string) []sessions.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	var out []sessions.Session
	if _, err := sessions.Read(ctx, st, sessions.Query{From: from, To: to}, sessions.ReadOptions{}, func(s sessions.Session) error {
		out = append(out, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("the archive in %s has no sessions in %s..%s", dir, from, to)
	}
	return out
}

// addUnsignedRepeat archives an unsigned repeat of the PUBLISH of the first verified closed
// session of ss: sessionstest signs all of a domain's callbacks or none, and a session with a
// copy of each kind must not be listed as verified.
func addUnsignedRepeat(ctx context.Context, t *testing.T, st storage.Store, ss []sessions.Session) {
	t.Helper()
	i := slices.IndexFunc(ss, func(s sessions.Session) bool { return s.Verified && s.Status == sessions.Closed })
	if i < 0 {
		t.Fatal("the generated archive has no verified closed session")
	}
	s, pt := ss[i], ss[i].StartedAt()
	ts := strconv.FormatInt(s.PublishTimestamp, 10)
	body := fmt.Appendf(nil, `{"domain":%q,"app":%q,"stream":%q,"client_ip":"10.0.0.99","publish_timestamp":%q,"event":"PUBLISH"}`,
		s.Domain, s.App, s.Stream, ts)
	at := pt.Add(time.Second)
	line := layout.AppendRecord(nil, body, layout.Archive{ReceivedAt: at, EventID: layout.EventID(s.Domain, s.App, s.Stream, "PUBLISH", ts),
		RemoteAddr: "10.2.0.1:4000", Signature: layout.SignatureNone, PublishTime: &pt, Instance: "gen-c", Repeat: true})
	obj, err := layout.EncodeObject(line, true)
	if err == nil {
		err = st.Put(ctx, layout.ObjectKey(layout.Day(at, nil), "gen-c", 1, 0, true), obj, layout.ContentType)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// sessionCells renders a session's columns the way diffSessions renders DuckDB's values.
func sessionCells(s sessions.Session) []string {
	ended, dur := "NULL", "NULL"
	if d, ok := s.DurationS(); ok {
		ended, dur = s.EndedAt.UTC().Format(layout.ReceivedAtLayout), strconv.FormatInt(d, 10)
	}
	null := func(v string) string {
		if v == "" {
			return "NULL"
		}
		return v
	}
	return []string{s.Domain, s.App, s.Stream, strconv.FormatInt(s.PublishTimestamp, 10), s.StartedAt().Format(time.RFC3339),
		ended, dur, string(s.Status), strconv.FormatBool(s.Verified), null(s.ClientIP), null(s.NodeIP), null(s.DoneClientIP), null(s.DoneNodeIP)}
}
