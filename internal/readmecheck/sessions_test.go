package readmecheck_test

// Checks of the README's "Who streamed when" section: the `archiver sessions` synopsis and
// commands, and the DuckDB query that answers the same question over the raw archive. Each runs
// against a generated archive with every kind of session (sessionstest) and, where it can, the
// archive the real archiver wrote; the answer must be what the sessions package lists.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path"
	"path/filepath"
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

func init() {
	checkers = append(checkers, checker{
		name:  "archiver sessions: run on generated and real archives",
		match: func(c command) bool { return !c.Inline && wordsAre("archiver", "sessions")(c) },
		check: checkArchiverSessions,
	})
}

// genArchive writes a month of generated traffic (the README's example month) to a file store.
func genArchive(t *testing.T) (storage.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := sessionstest.Write(ctx, st, sessionstest.Spec{From: "2026-10-30", Days: 34, Streams: 8, MeanDuration: 3 * time.Hour, MeanGap: 2 * time.Hour, Seed: 13, Gzip: true, RecordsPerObject: 500}); err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// wantSessions is what the sessions package lists for q on st, one JSON object per session.
func wantSessions(t *testing.T, st storage.Store, q sessions.Query) []sessions.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out []sessions.Session
	if _, err := sessions.Read(ctx, st, q, sessions.ReadOptions{}, func(s sessions.Session) error {
		out = append(out, s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkArchiverSessions runs the README command for real (store URL pointed at the archive,
// S3 flags dropped) and compares its output with the sessions package's answer.
func checkArchiverSessions(t *testing.T, cmds []command) {
	c := cmds[0]
	gen, genDir := genArchive(t)
	for _, a := range []struct {
		name  string
		store storage.Store
		url   string
		date  string // replaces every date of the command ("" = keep the README's)
	}{
		{"generated", gen, "file://" + filepath.ToSlash(genDir), ""},
		{"written by archiver serve", nil, arch.URL, arch.Days[0]},
	} {
		text := storeURLR.ReplaceAllString(c.Text, a.url)
		if a.date != "" {
			text = dateRE.ReplaceAllString(text, a.date)
		}
		w := strings.Fields(text)
		var args []string
		opt := map[string]string{"format": "jsonl"} // stdout is not a terminal
		for i := 1; i < len(w); i++ {
			name := strings.TrimLeft(w[i], "-")
			if name == "s3-endpoint" || name == "s3-region" {
				i++
				continue
			}
			args = append(args, w[i])
			if strings.HasPrefix(w[i], "-") && i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") {
				opt[name] = w[i+1]
				args = append(args, w[i+1])
				i++
			}
		}
		out, stderr, err := runCmd(t, t.TempDir(), cleanEnv(), bins.Archiver, args...)
		if err != nil {
			t.Fatalf("%s: ran as `archiver %s` on the %s archive: %v\n%s", c, strings.Join(args, " "), a.name, err, stderr)
		}
		st := a.store
		if st == nil {
			if st, err = storage.Open(context.Background(), storage.Options{URL: a.url}); err != nil {
				t.Fatal(err)
			}
		}
		q := sessions.Query{From: opt["from"], To: opt["to"], Domain: opt["domain"], App: opt["app"], Stream: opt["stream"], Status: sessions.Status(opt["status"])}
		want := wantSessions(t, st, q)
		if a.store != nil && len(want) == 0 {
			t.Fatalf("%s: the generated archive has no session this command selects; adjust the generator's Spec", c)
		}
		lines := nonEmptyLines(out)
		switch opt["format"] {
		case "jsonl":
			var exp []string
			for _, s := range want {
				exp = append(exp, string(s.AppendJSON(nil)))
			}
			if strings.Join(lines, "\n") != strings.Join(exp, "\n") {
				t.Errorf("%s: on the %s archive printed\n%s\nthe sessions package lists\n%s", c, a.name, out, strings.Join(exp, "\n"))
			}
		case "csv":
			if len(lines) != len(want)+1 || lines[0] != strings.Join(sessions.Columns, ",") {
				t.Errorf("%s: on the %s archive printed %d lines, want a header and %d rows:\n%s", c, a.name, len(lines), len(want), out)
			}
		case "table":
			if len(lines) != len(want)+2 || !strings.HasPrefix(lines[len(lines)-1], fmt.Sprintf("%d sessions: ", len(want))) {
				t.Errorf("%s: on the %s archive printed %d lines, want a header, %d rows and a summary:\n%s", c, a.name, len(lines), len(want), out)
			}
		default:
			t.Errorf("%s: unknown --format %q", c, opt["format"])
		}
	}
}

// TestSessionsUsageBlock: the synopsis (the plain block starting `archiver sessions`) names
// exactly the flags of `archiver sessions -h`.
func TestSessionsUsageBlock(t *testing.T) {
	var f *fence
	for i, b := range readme.fences("") {
		if len(b.Lines) > 0 && strings.HasPrefix(b.Lines[0], "archiver sessions") {
			f = &readme.fences("")[i]
		}
	}
	if f == nil {
		t.Fatal("README has no `archiver sessions` synopsis (a ``` block starting with `archiver sessions`)")
	}
	have, _ := helpFlags(t, bins.Archiver, "sessions")
	named := dashFlags(strings.Join(f.Lines, "\n"))
	for _, fl := range named {
		if _, ok := have[fl]; !ok {
			t.Errorf("README.md:%d: the synopsis names --%s, which `archiver sessions -h` does not have", f.Line, fl)
		}
	}
	for _, fl := range slices.Sorted(maps.Keys(have)) {
		if !slices.Contains(named, fl) {
			t.Errorf("README.md:%d: the `archiver sessions` synopsis lacks --%s (it is in `archiver sessions -h`)", f.Line, fl)
		}
	}
}

// sessionsSQL is the README's DuckDB query of sessions.
func sessionsSQL(t *testing.T) fence {
	t.Helper()
	for _, f := range readme.fences("sql") {
		q := strings.Join(f.Lines, "\n")
		if strings.Contains(q, "PUBLISH_DONE") && strings.Contains(q, "duration_s") {
			return f
		}
	}
	t.Fatal("README has no DuckDB query of sessions (a sql block computing duration_s from PUBLISH_DONE)")
	return fence{}
}

var sqlDateRE = regexp.MustCompile(`DATE '(\d{4}-\d{2}-\d{2})'`)

// TestSessionsSQL runs the README's query with DuckDB on the generated archive (its dates as
// written) and on the archive the real archiver wrote (dates set to its day), and compares
// every row and column with what the sessions package lists.
func TestSessionsSQL(t *testing.T) {
	f := sessionsSQL(t)
	q := strings.Join(f.Lines, "\n")
	m := readJSONRE.FindStringSubmatch(q)
	if m == nil {
		m = regexp.MustCompile(`read_ndjson_objects\('([^']*)'`).FindStringSubmatch(q)
	}
	if m == nil {
		t.Fatalf("README.md:%d: the query reads no archive path", f.Line)
	}
	glob := m[1]
	i := strings.Index(glob, "dt=")
	if i < 0 {
		t.Fatalf("README.md:%d: the path %q does not go through the dt= partitions", f.Line, glob)
	}
	for _, o := range arch.Objects {
		if ok, _ := path.Match(glob[i:], o); strings.HasPrefix(o, "dt=") && !ok {
			t.Errorf("README.md:%d: the glob %q misses the archive object %s", f.Line, glob, o)
		}
	}
	dates := sqlDateRE.FindAllStringSubmatch(q, -1)
	if len(dates) != 4 || dates[0][1] != dates[2][1] || dates[1][1] != dates[3][1] {
		t.Fatalf("README.md:%d: want the range's two dates twice each (listing, then reading with the day around), got %v", f.Line, dates)
	}
	gen, genDir := genArchive(t)
	for _, a := range []struct {
		name     string
		store    storage.Store
		dir      string
		from, to string
	}{
		{"generated", gen, genDir, dates[0][1], dates[1][1]},
		{"written by archiver serve", nil, arch.Dir, arch.Days[0], arch.Days[0]},
	} {
		local := strings.Replace(q, m[0], strings.Replace(m[0], glob, filepath.ToSlash(a.dir)+"/"+glob[i:], 1), 1)
		local = strings.ReplaceAll(local, "DATE '"+dates[0][1]+"'", "DATE '"+a.from+"'")
		local = strings.ReplaceAll(local, "DATE '"+dates[1][1]+"'", "DATE '"+a.to+"'")
		cols, rows, err := runDuckDB(local)
		if errors.Is(err, errNoDuckDB) {
			testenv.Skip(t, fmt.Sprintf("README.md:%d: query not run: %v", f.Line, err))
		}
		if err != nil {
			t.Fatalf("README.md:%d: DuckDB on the %s archive: %v\nquery:\n%s", f.Line, a.name, err, local)
		}
		st := a.store
		if st == nil {
			if st, err = storage.Open(context.Background(), storage.Options{URL: "file://" + a.dir}); err != nil {
				t.Fatal(err)
			}
		}
		want := wantSessions(t, st, sessions.Query{From: a.from, To: a.to})
		if len(want) == 0 {
			t.Fatalf("the %s archive has no sessions in %s..%s", a.name, a.from, a.to)
		}
		var names []string
		for _, c := range cols {
			names = append(names, c.Name)
		}
		if strings.Join(names, ",") != strings.Join(sessions.Columns, ",") {
			t.Errorf("README.md:%d: columns %v, `archiver sessions` prints %v", f.Line, names, sessions.Columns)
			continue
		}
		if len(rows) != len(want) {
			t.Errorf("README.md:%d: DuckDB lists %d sessions on the %s archive, `archiver sessions` %d", f.Line, len(rows), a.name, len(want))
		}
		for r := range min(len(rows), len(want)) {
			exp := sessionCells(want[r])
			for c, col := range cols {
				if got := duckString(rows[r][c], col.Type); got != exp[c] {
					t.Errorf("README.md:%d: %s archive, row %d column %s = %q, `archiver sessions` says %q", f.Line, a.name, r+1, col.Name, got, exp[c])
				}
			}
		}
	}
}

// sessionCells renders a session the way duckString renders DuckDB's values.
func sessionCells(s sessions.Session) []string {
	ended, dur := "<nil>", "<nil>"
	if d, ok := s.DurationS(); ok {
		ended, dur = s.EndedAt.UTC().Format(layout.ReceivedAtLayout), strconv.FormatInt(d, 10)
	}
	return []string{s.Domain, s.App, s.Stream, strconv.FormatInt(s.PublishTimestamp, 10), s.StartedAt().Format(time.RFC3339),
		ended, dur, string(s.Status), strconv.FormatBool(s.Verified)}
}
