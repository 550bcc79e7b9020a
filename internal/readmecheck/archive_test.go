package readmecheck_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

var receivedAtRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$`)

// sameIdentity finds the archived record of the same callback as the README's example.
func sameIdentity(ex record) (record, bool) {
	for _, r := range arch.Records {
		match := true
		for _, k := range []string{"domain", "app", "stream", "event", "publish_timestamp"} {
			if r.str(k) != ex.str(k) {
				match = false
			}
		}
		if match {
			return r, true
		}
	}
	return record{}, false
}

// TestJSONBlocks: the example record is valid JSON with the keys, in the order, of a record
// the archiver really writes for that callback, and its derived values are the real ones.
func TestJSONBlocks(t *testing.T) {
	blocks := readme.fences("json")
	if len(blocks) == 0 {
		t.Fatal("README has no json block (the example record)")
	}
	for _, f := range blocks {
		ex, err := parseRecord([]byte(strings.Join(f.Lines, "\n")))
		if err != nil {
			t.Errorf("README.md:%d: not a JSON object: %v", f.Line, err)
			continue
		}
		real, ok := sameIdentity(ex)
		if !ok {
			t.Errorf("README.md:%d: no archived record has this example's domain/app/stream/event/publish_timestamp; add its callback to archiver/testdata/callbacks", f.Line)
			continue
		}
		if got, want := strings.Join(ex.Keys, ","), strings.Join(real.Keys, ","); got != want {
			t.Errorf("README.md:%d: example keys\n  %s\nthe archiver writes\n  %s", f.Line, got, want)
		}
		if got, want := strings.Join(ex.ArchiveKeys, ","), strings.Join(real.ArchiveKeys, ","); got != want {
			t.Errorf("README.md:%d: example archive.* keys\n  %s\nthe archiver writes\n  %s", f.Line, got, want)
		}
		for _, k := range []string{"event_id", "publish_time"} {
			if ex.arch(k) != real.arch(k) {
				t.Errorf("README.md:%d: archive.%s is %q in the example, %q in the real record of the same callback", f.Line, k, ex.arch(k), real.arch(k))
			}
		}
		if !receivedAtRE.MatchString(ex.arch("received_at")) || !receivedAtRE.MatchString(real.arch("received_at")) {
			t.Errorf("README.md:%d: received_at %q (real: %q) is not RFC 3339 UTC with nine fractional digits", f.Line, ex.arch("received_at"), real.arch("received_at"))
		}
		if s := ex.arch("signature"); s != "verified" && s != "none" {
			t.Errorf("README.md:%d: archive.signature %q is neither verified nor none", f.Line, s)
		}
	}
}

// layoutPattern turns a line of the README's archive layout into a regexp for object keys.
// <instance> stands for the real instance names (they may contain '-' and digits, so a
// pattern would also swallow a missing <sequence>).
func layoutPattern(p string, instances []string) (*regexp.Regexp, error) {
	p = strings.TrimPrefix(p, "PREFIX/")
	q := regexp.QuoteMeta(p)
	q = regexp.MustCompile(`dt=\d{4}-\d{2}-\d{2}`).ReplaceAllString(q, `dt=\d{4}-\d{2}-\d{2}`)
	alt := make([]string, len(instances))
	for i, in := range instances {
		alt[i] = regexp.QuoteMeta(in)
	}
	q = strings.NewReplacer("<instance>", "(?:"+strings.Join(alt, "|")+")", "<sequence>", `\d+`, "<part>", `\d+`).Replace(q)
	if strings.Contains(q, "<") {
		return nil, fmt.Errorf("unknown placeholder in %q", p)
	}
	return regexp.Compile("^" + q + "$")
}

// TestArchiveLayoutBlock: every object the archiver wrote has a name the README's layout
// describes, and every layout line describes real objects.
func TestArchiveLayoutBlock(t *testing.T) {
	var f *fence
	for i, b := range readme.fences("") {
		if len(b.Lines) > 0 && strings.HasPrefix(b.Lines[0], "PREFIX/") {
			f = &readme.fences("")[i]
		}
	}
	if f == nil {
		t.Fatal("README has no archive layout block (a ``` block of PREFIX/... lines)")
	}
	inst := map[string]bool{}
	for _, r := range arch.Records {
		inst[r.arch("instance")] = true
	}
	var pats []*regexp.Regexp
	for i, l := range f.Lines {
		re, err := layoutPattern(strings.Fields(l)[0], slices.Sorted(maps.Keys(inst)))
		if err != nil {
			t.Fatalf("README.md:%d: %v", f.bodyLine(i), err)
		}
		pats = append(pats, re)
	}
	used := make([]bool, len(pats))
	for _, o := range arch.Objects {
		ok := false
		for i, re := range pats {
			if re.MatchString(o) {
				ok, used[i] = true, true
			}
		}
		if !ok {
			t.Errorf("README.md:%d: the archiver wrote %s, which no line of the layout describes", f.Line, o)
		}
	}
	for i, u := range used {
		if !u {
			t.Errorf("README.md:%d: no object of the real archive looks like %s (objects: %v)", f.bodyLine(i), f.Lines[i], arch.Objects)
		}
	}
}

// TestRepoLayoutBlock: every path of the layout exists, and every package directory under
// archiver/ and internal/ is listed.
func TestRepoLayoutBlock(t *testing.T) {
	var f *fence
	for i, b := range readme.fences("") {
		if len(b.Lines) > 0 && strings.HasPrefix(b.Lines[0], "main.go") {
			f = &readme.fences("")[i]
		}
	}
	if f == nil {
		t.Fatal("README has no repository layout block (a ``` block starting with main.go)")
	}
	listed := map[string]bool{}
	for i, l := range f.Lines {
		paths := strings.Fields(regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), 2)[0])
		for _, p := range paths {
			listed[strings.TrimSuffix(p, "/")] = true
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err != nil {
				t.Errorf("README.md:%d: %s does not exist", f.bodyLine(i), p)
			}
		}
	}
	for _, parent := range []string{"archiver", "internal"} {
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := parent + "/" + e.Name()
			if !e.IsDir() || e.Name() == "internal" || e.Name() == "testdata" || listed[name] {
				continue
			}
			if gos, _ := filepath.Glob(filepath.Join(root, parent, e.Name(), "*.go")); len(gos) > 0 {
				t.Errorf("README.md:%d: the layout lacks %s/", f.Line, name)
			}
		}
	}
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestLinks: every relative link points at a file or directory of the repository.
func TestLinks(t *testing.T) {
	for i, l := range readme.Lines {
		for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
				t.Errorf("README.md:%d: link to %s: %v", i+1, target, err)
			}
		}
	}
}

// sqlBlocks sorts the sql blocks into the DuckDB query and the Athena table.
func sqlBlock(t *testing.T, prefix string) fence {
	t.Helper()
	for _, f := range readme.fences("sql") {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(strings.Join(f.Lines, " "))), prefix) {
			return f
		}
	}
	t.Fatalf("README has no sql block starting with %s", prefix)
	return fence{}
}

func TestSQLBlocksKnown(t *testing.T) {
	for _, f := range readme.fences("sql") {
		s := strings.ToUpper(strings.TrimSpace(strings.Join(f.Lines, " ")))
		if !strings.HasPrefix(s, "SELECT") && !strings.HasPrefix(s, "CREATE EXTERNAL TABLE") {
			t.Errorf("README.md:%d: sql block is neither a DuckDB SELECT nor the Athena CREATE EXTERNAL TABLE; add a check for it", f.Line)
		}
	}
}

var readJSONRE = regexp.MustCompile(`read_json\('([^']*)'`)

// column is one result column of a DuckDB query.
type column struct{ Name, Type string }

// errNoDuckDB is returned by runDuckDB in builds without cgo.
var errNoDuckDB = errors.New("DuckDB is not available: this test binary was built without cgo (CGO_ENABLED=0 or no C compiler)")

// TestDuckDBQuery runs the README's query with DuckDB on the real archive (path glob pointed
// at it, dates at its day) and compares the rows with the archived records.
func TestDuckDBQuery(t *testing.T) {
	f := sqlBlock(t, "SELECT")
	q := strings.Join(f.Lines, "\n")
	m := readJSONRE.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("README.md:%d: the query does not read_json('...') the archive", f.Line)
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
	if !regexp.MustCompile(`hive_partitioning\s*=\s*true`).MatchString(q) && strings.Contains(q, "dt") {
		t.Errorf("README.md:%d: the query uses dt but does not turn on hive_partitioning", f.Line)
	}
	local := strings.Replace(q, m[0], "read_json('"+filepath.ToSlash(arch.Dir)+"/"+glob[i:]+"'", 1)
	local = dateRE.ReplaceAllString(local, arch.Days[0])
	cols, rows, err := runDuckDB(local)
	if errors.Is(err, errNoDuckDB) {
		t.Skipf("README.md:%d: query not run: %v; the static checks passed", f.Line, err)
	}
	if err != nil {
		t.Fatalf("README.md:%d: DuckDB: %v\nquery:\n%s", f.Line, err, local)
	}
	want := append([]record(nil), arch.Records...)
	sort.Slice(want, func(i, j int) bool { return want[i].arch("received_at") < want[j].arch("received_at") })
	if len(rows) != len(want) {
		t.Fatalf("README.md:%d: DuckDB returned %d rows, the archive holds %d events", f.Line, len(rows), len(want))
	}
	hasDt := false
	for _, c := range cols {
		hasDt = hasDt || c.Name == "dt"
	}
	if !hasDt {
		t.Errorf("README.md:%d: the query returns no dt column (%v)", f.Line, cols)
	}
	for r, row := range rows {
		rec := want[r]
		for c, col := range cols {
			name := col.Name
			got := duckString(row[c], col.Type)
			var exp string
			switch v, ok := rec.Fields[name]; {
			case name == "dt":
				exp = rec.Day
			case ok:
				exp = fmt.Sprint(v)
			case rec.Archive[name] != nil:
				exp = fmt.Sprint(rec.Archive[name])
			default:
				t.Errorf("README.md:%d: column %s is not a field of the archived records", f.Line, name)
				continue
			}
			if got != exp {
				t.Errorf("README.md:%d: row %d column %s = %q, archived %q", f.Line, r+1, name, got, exp)
			}
		}
	}
}

// duckString renders a DuckDB value the way the archive writes it.
func duckString(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case time.Time:
		if typ == "DATE" {
			return x.Format("2006-01-02")
		}
		return x.UTC().Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(x)
	}
}

var (
	athenaColsRE     = regexp.MustCompile(`(?s)CREATE EXTERNAL TABLE\s+\w+\s*\((.*)\)\s*PARTITIONED BY\s*\(\s*(\w+)\s+\w+\s*\)`)
	athenaLocationRE = regexp.MustCompile(`LOCATION\s+'([^']+)'`)
	athenaTemplateRE = regexp.MustCompile(`'storage\.location\.template'\s*=\s*'([^']+)'`)
	athenaFormatRE   = regexp.MustCompile(`'projection\.dt\.format'\s*=\s*'([^']+)'`)
)

// TestAthenaTable cannot run Athena; it checks the table against real records instead: every
// field the archiver writes is a column (auth_sign deliberately excepted, as the README says),
// every column is a field it writes, and the partition template is the archive's layout.
func TestAthenaTable(t *testing.T) {
	f := sqlBlock(t, "CREATE EXTERNAL TABLE")
	q := strings.Join(f.Lines, "\n")
	m := athenaColsRE.FindStringSubmatch(q)
	if m == nil {
		t.Fatalf("README.md:%d: cannot find the column list and PARTITIONED BY", f.Line)
	}
	cols, sub := map[string]bool{}, map[string]bool{}
	for _, c := range splitTopLevel(m[1]) {
		w := strings.Fields(c)
		if len(w) < 2 {
			continue
		}
		cols[w[0]] = true
		if st := regexp.MustCompile(`(?s)struct<(.*)>`).FindStringSubmatch(c); st != nil {
			for _, s := range strings.Split(st[1], ",") {
				name, _, _ := strings.Cut(strings.TrimSpace(s), ":")
				sub[name] = true
			}
		}
	}
	if m[2] != "dt" {
		t.Errorf("README.md:%d: partitioned by %s; the archive partitions by dt", f.Line, m[2])
	}
	leftOut := map[string]bool{}
	if strings.Contains(strings.Join(readme.Lines, "\n"), "(`auth_sign` is deliberately left out of the table") {
		leftOut["auth_sign"] = true
	}
	written, archWritten := map[string]bool{}, map[string]bool{}
	for _, r := range arch.Records {
		for _, k := range r.Keys {
			written[k] = true
		}
		for _, k := range r.ArchiveKeys {
			archWritten[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(written)) {
		if !cols[k] && !leftOut[k] {
			t.Errorf("README.md:%d: the archiver writes %q, which the Athena table lacks", f.Line, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(archWritten)) {
		if !sub[k] {
			t.Errorf("README.md:%d: the archiver writes archive.%s, which the table's archive struct lacks", f.Line, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(sub)) {
		if !archWritten[k] {
			t.Errorf("README.md:%d: the table's archive struct has %s, which the archiver does not write", f.Line, k)
		}
	}
	for c := range cols {
		if !written[c] {
			t.Errorf("README.md:%d: column %q is no field of an archived record (sample callbacks in archiver/testdata/callbacks)", f.Line, c)
		}
	}
	loc, tmpl := athenaLocationRE.FindStringSubmatch(q), athenaTemplateRE.FindStringSubmatch(q)
	if loc == nil || tmpl == nil {
		t.Fatalf("README.md:%d: LOCATION or storage.location.template missing", f.Line)
	}
	if !strings.HasSuffix(loc[1], "/") || tmpl[1] != loc[1]+"dt=${dt}/" {
		t.Errorf("README.md:%d: storage.location.template %q must be LOCATION %q + \"dt=${dt}/\"", f.Line, tmpl[1], loc[1])
	}
	if day := strings.ReplaceAll(strings.TrimPrefix(tmpl[1], loc[1]), "${dt}", arch.Days[0]); !hasObjectUnder(day) {
		t.Errorf("README.md:%d: the archive has no objects under %s", f.Line, day)
	}
	if fm := athenaFormatRE.FindStringSubmatch(q); fm == nil || fm[1] != "yyyy-MM-dd" {
		t.Errorf("README.md:%d: projection.dt.format must be 'yyyy-MM-dd' (dt=%s)", f.Line, arch.Days[0])
	}
	// The bucket/prefix is the one the README's other examples read.
	for _, c := range readme.allCommands() {
		if u := regexp.MustCompile(`s3://[^\s/]+/[^\s/]+`).FindString(c.Text); u != "" && !strings.HasPrefix(loc[1], u+"/") {
			t.Errorf("README.md:%d: LOCATION %s is not the archive %s used at README.md:%d", f.Line, loc[1], u, c.Line)
		}
	}
}

func hasObjectUnder(prefix string) bool {
	for _, o := range arch.Objects {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

// splitTopLevel splits on commas outside <...> and (...).
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '<', '(':
			depth++
		case '>', ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}
