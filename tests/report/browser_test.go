package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions/sessionstest"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
)

// ChromiumEnv names a Chromium binary other than the one on PATH.
const ChromiumEnv = "LIVEHOOK_CHROMIUM"

// findChromium finds Debian's chromium (apt-get install chromium), or $LIVEHOOK_CHROMIUM.
func findChromium() (string, error) {
	if p := os.Getenv(ChromiumEnv); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH: apt-get install chromium (or set " + ChromiumEnv + ")")
}

var (
	buildOnce sync.Once
	archiver  string
	buildErr  error
)

// archiverBin builds the archiver once for the package.
func archiverBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := devenv.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "report-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var b devenv.Binaries
		b, buildErr = devenv.Build(ctx, root, dir, "test-"+strconv.FormatInt(time.Now().Unix(), 10), "archiver")
		archiver = b.Archiver
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return archiver
}

func TestMain(m *testing.M) {
	code := m.Run()
	if archiver != "" {
		os.RemoveAll(filepath.Dir(archiver))
	}
	os.Exit(code)
}

// run runs the built archiver and returns its stdout.
func run(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(archiverBin(t), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("archiver %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// countSessions is how many sessions `archiver sessions` lists for the flags.
func countSessions(t *testing.T, args ...string) int {
	t.Helper()
	out := strings.TrimSpace(run(t, append([]string{"sessions", "--format", "jsonl"}, args...)...))
	if out == "" {
		return 0
	}
	return strings.Count(out, "\n") + 1
}

// handMade writes a small archive with the sessions an auditor must see right: open (no
// PUBLISH_DONE; its stream streams again later), end-only (no PUBLISH), across midnight (its two callbacks in two partition
// days), one whose PUBLISH_DONE comes from another node, and a name with markup in it.
func handMade(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + dir})
	if err != nil {
		t.Fatal(err)
	}
	type cb struct {
		stream, event, at, client, node string
		pts                             int64
	}
	d := func(s string) int64 { tt, _ := time.Parse(time.RFC3339, s); return tt.Unix() }
	cbs := []cb{
		{"closed_cam", "PUBLISH", "2026-11-10T08:00:01Z", "203.0.113.5", "10.9.0.1", d("2026-11-10T08:00:00Z")},
		{"closed_cam", "PUBLISH_DONE", "2026-11-10T09:30:00Z", "203.0.113.5", "10.9.0.2", d("2026-11-10T08:00:00Z")},
		{"open_cam", "PUBLISH", "2026-11-10T12:00:01Z", "203.0.113.6", "10.9.0.1", d("2026-11-10T12:00:00Z")},
		{"open_cam", "PUBLISH", "2026-11-11T02:00:01Z", "203.0.113.6", "10.9.0.1", d("2026-11-11T02:00:00Z")},
		{"open_cam", "PUBLISH_DONE", "2026-11-11T03:00:00Z", "203.0.113.6", "10.9.0.1", d("2026-11-11T02:00:00Z")},
		{"endonly_cam", "PUBLISH_DONE", "2026-11-10T15:00:00Z", "203.0.113.7", "10.9.0.3", d("2026-11-10T14:00:00Z")},
		{"midnight_cam", "PUBLISH", "2026-11-10T23:30:01Z", "203.0.113.8", "10.9.0.1", d("2026-11-10T23:30:00Z")},
		{"midnight_cam", "PUBLISH_DONE", "2026-11-11T00:40:00Z", "203.0.113.8", "10.9.0.1", d("2026-11-10T23:30:00Z")},
		{`<b>x</b>"cam'`, "PUBLISH", "2026-11-11T10:00:01Z", "2001:db8::5", "10.9.0.1", d("2026-11-11T10:00:00Z")},
		{`<b>x</b>"cam'`, "PUBLISH_DONE", "2026-11-11T10:05:00Z", "2001:db8::5", "10.9.0.1", d("2026-11-11T10:00:00Z")},
	}
	byDay := map[string][]byte{}
	for _, c := range cbs {
		at, _ := time.Parse(time.RFC3339, c.at)
		pts := strconv.FormatInt(c.pts, 10)
		pt := time.Unix(c.pts, 0).UTC()
		body := fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":%q,"client_ip":%q,"node_ip":%q,"publish_timestamp":%q,"event":%q}`,
			c.stream, c.client, c.node, pts, c.event)
		day := layout.Day(at, nil)
		byDay[day] = layout.AppendRecord(byDay[day], body, layout.Archive{ReceivedAt: at, EventID: layout.EventID("push.example.com", "live", c.stream, c.event, pts),
			RemoteAddr: "10.2.0.1:4000", Signature: layout.SignatureNone, PublishTime: &pt, Instance: "hand"})
	}
	for day, lines := range byDay {
		obj, err := layout.EncodeObject(lines, true)
		if err == nil {
			err = st.Put(ctx, layout.ObjectKey(day, "hand", 1, 0, true), obj, layout.ContentType)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReportInChromium: the page renders in headless Chromium with no console errors and no
// request beyond the file itself, shows the session count `archiver sessions` lists, narrows the
// table to a stream as `archiver sessions --stream` does, zooms the timeline to an hour, and
// leaves a screenshot as a test artifact (go test -artifacts keeps it).
func TestReportInChromium(t *testing.T) {
	chromium := testenv.Binary(t, "chromium", findChromium)
	month := t.TempDir()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + month})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessionstest.Write(context.Background(), st, sessionstest.Spec{From: "2026-11-01", Days: 30, Streams: 60,
		MeanDuration: 3 * time.Hour, MeanGap: 2 * time.Hour, Seed: 21, Gzip: true}); err != nil {
		t.Fatal(err)
	}
	small := t.TempDir()
	handMade(t, small)

	for _, tc := range []struct {
		name, store, from, to, stream string
		tz                            string
	}{
		{name: "generated month", store: "file://" + month, from: "2026-11-01", to: "2026-11-30", stream: "room_7", tz: "UTC"},
		{name: "hand-made", store: "file://" + small, from: "2026-11-10", to: "2026-11-11", stream: "midnight_cam", tz: "Asia/Shanghai"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := []string{"--store", tc.store, "--from", tc.from, "--to", tc.to}
			out := filepath.Join(t.ArtifactDir(), "report.html")
			run(t, append([]string{"report", "--out", out, "--tz", tc.tz}, sel...)...)
			want, wantStream := countSessions(t, sel...), countSessions(t, append(sel, "--stream", tc.stream)...)
			if want == 0 || wantStream == 0 || wantStream >= want {
				t.Fatalf("archiver sessions lists %d sessions, %d of stream %s: the archive does not test the filter", want, wantStream, tc.stream)
			}
			b := openPage(t, chromium, out)
			defer b.close()
			if got := b.text("#count"); got != strconv.Itoa(want) {
				t.Errorf("the page shows %s sessions, archiver sessions lists %d", got, want)
			}
			if got := b.text("#sum-sessions"); got != strconv.Itoa(want) {
				t.Errorf("the summary shows %s sessions, archiver sessions lists %d", got, want)
			}
			b.do(chromedp.SendKeys(chromedp.CSS("#f-stream"), tc.stream))
			b.waitText("#count", strconv.Itoa(wantStream))
			streams := step(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rows tr td:nth-child(8)')).map(function(td){return td.textContent})`))
			if len(streams) == 0 || len(streams) > 100 {
				t.Errorf("the filtered table shows %d rows", len(streams))
			}
			for _, s := range streams {
				if s != tc.stream {
					t.Errorf("filtered by %s, the table shows a row of %q", tc.stream, s)
					break
				}
			}
			bars := step(b, chromedp.Evaluate[int](`document.querySelectorAll('#timeline rect').length`))
			if bars == 0 {
				t.Error("the timeline draws no bar for the stream")
			}
			b.do(chromedp.Click(chromedp.CSS(`button[data-zoom="3600"]`)))
			w := b.text("#tl-window")
			if m := windowRE.FindStringSubmatch(w); m == nil || !strings.Contains(w, tc.tz) {
				t.Errorf("zoomed window %q does not name two times and the zone %s", w, tc.tz)
			} else if t0, err0 := time.Parse("2006-01-02 15:04", m[1]); err0 != nil {
				t.Error(err0)
			} else if t1, err1 := time.Parse("2006-01-02 15:04", m[2]); err1 != nil || t1.Sub(t0) != time.Hour {
				t.Errorf("zoomed to an hour, the window is %q", w)
			}
			step(b, chromedp.Evaluate[bool](`(function(e){e.value='';return e.dispatchEvent(new Event('input'))})(document.getElementById('f-stream'))`))
			b.waitText("#count", strconv.Itoa(want))
			b.do(chromedp.Click(chromedp.CSS(`button[data-zoom="0"]`)))
			// The first screen, as docs/images/report.png shows it, and the whole page.
			top := step(b, chromedp.CaptureScreenshot())
			if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "report-top.png"), top, 0o644); err != nil {
				t.Fatal(err)
			}
			png := step(b, chromedp.FullScreenshot(100))
			if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "report.png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.name == "generated month" {
				// Pages of 100 rows, and sorting by duration puts the shortest first.
				b.do(chromedp.Click(chromedp.CSS("#pg-next")))
				if info := b.text("#pg-info"); !strings.HasPrefix(info, "rows 101-200 of "+strconv.Itoa(want)) {
					t.Errorf("the second page says %q", info)
				}
				b.do(chromedp.Click(chromedp.CSS(`th[data-sort="dur"]`)))
				durs := step(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rows tr td:nth-child(3)')).map(function(td){return td.textContent})`))
				if len(durs) != 100 || durs[0] != "-" {
					t.Errorf("sorted by duration, ascending: open sessions (no duration) first, got %d rows starting %q", len(durs), durs[:min(3, len(durs))])
				}
				b.do(chromedp.Click(chromedp.CSS(`th[data-sort="start"]`)))
			}
			if tc.name == "hand-made" {
				// The open session (no end) is drawn up to its stream's next session.
				gap := step(b, chromedp.Evaluate[float64](`(function(){
					var open = document.querySelector('#timeline rect.open');
					var next = Array.from(document.querySelectorAll('#timeline rect.closed')).filter(function(r){
						return r.getAttribute('y') === open.getAttribute('y');})[0];
					return (+next.getAttribute('x')) - (+open.getAttribute('x') + +open.getAttribute('width'));})()`))
				if gap < -0.5 || gap > 0.5 {
					t.Errorf("the open session's bar and its stream's next session are %.1f px apart (negative: it runs over it)", gap)
				}
				// Search finds a session by its client IP.
				step(b, chromedp.Evaluate[bool](`(function(e){e.value='203.0.113.7';return e.dispatchEvent(new Event('input'))})(document.getElementById('f-search'))`))
				b.waitText("#count", "1")
				if row := b.text("#rows tr"); !strings.Contains(row, "endonly_cam") {
					t.Errorf("searching 203.0.113.7 shows %q", row)
				}
				step(b, chromedp.Evaluate[bool](`(function(e){e.value='';return e.dispatchEvent(new Event('input'))})(document.getElementById('f-search'))`))
				b.waitText("#count", strconv.Itoa(want))
				// Open, end-only and cross-midnight sessions are listed with their status; the IP
				// the PUBLISH_DONE changed shows as changed; markup in a name stays text.
				rows := step(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#rows tr')).map(function(tr){return tr.textContent})`))
				all := strings.Join(rows, "\n")
				for _, s := range []string{"open_cam", "endonly_cam", "end only", "open", "midnight_cam", "2026-11-11 07:30:00", "10.9.0.1 \u2192 10.9.0.2", `<b>x</b>"cam'`} {
					if !strings.Contains(all, s) {
						t.Errorf("the table lacks %q:\n%s", s, all)
					}
				}
			}
			b.checkClean()
		})
	}
}

// windowRE reads the timeline's window label: "FROM – TO (ZONE)".
var windowRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d) \x{2013} (\d{4}-\d\d-\d\d \d\d:\d\d) \(`)

// TestEmptyReportInChromium: a range without sessions still renders cleanly and says so.
func TestEmptyReportInChromium(t *testing.T) {
	chromium := testenv.Binary(t, "chromium", findChromium)
	out := filepath.Join(t.ArtifactDir(), "empty.html")
	run(t, "report", "--store", "file://"+t.TempDir(), "--from", "2026-11-10", "--out", out)
	b := openPage(t, chromium, out)
	defer b.close()
	if got := b.text("#count"); got != "0" {
		t.Errorf("count %q, want 0", got)
	}
	if got := b.text("#pg-info"); got != "no sessions match" {
		t.Errorf("pager %q", got)
	}
	if got := b.text("#timeline"); !strings.Contains(got, "No sessions in this window") {
		t.Errorf("timeline %q", got)
	}
	b.do(chromedp.Click(chromedp.CSS(`button[data-zoom="3600"]`)), chromedp.Click(chromedp.CSS("#tl-next")), chromedp.Click(chromedp.CSS(`th[data-sort="client"]`)))
	b.checkClean()
}

// page is one Chromium tab on a report, with what it said on the console.
type page struct {
	t       testing.TB
	ctx     context.Context
	close   func()
	mu      sync.Mutex
	errs    []string
	foreign []string
}

func openPage(t *testing.T, chromium, file string) *page {
	t.Helper()
	p := newPage(t, chromium)
	p.do(chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
	return p
}

// newPage starts Chromium with the flags of an isolated, quiet headless browser, a fresh
// profile, the console and the network watched.
func newPage(t testing.TB, chromium string) *page {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900),
	}
	p := &page{t: t}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx, chromedp.WithListener(p.event))
	p.ctx, p.close = ctx, func() { cancelC(); cancelA() }
	t.Cleanup(p.close) // also when a step fails the test: the browser never outlives it
	// The first Run starts the browser, which lives as long as that Run's context: p.ctx, not a
	// step's deadline.
	if err := chromedp.Do(ctx); err != nil {
		p.close()
		t.Fatalf("starting %s: %v", chromium, err)
	}
	enable := func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		if _, err := cdp.Call(ctx, t, log.Enable, cdp.Empty{}); err != nil {
			return chromedp.Void{}, err
		}
		_, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{})
		return chromedp.Void{}, err
	}
	p.do(enable)
	return p
}

// event keeps what the page must not do: log an error or a warning, throw, or load anything.
func (p *page) event(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
			p.errs = append(p.errs, fmt.Sprintf("console.%s: %d args", e.Type, len(e.Args)))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		desc := ""
		if d.Exception != nil {
			desc = d.Exception.Description
		}
		p.errs = append(p.errs, fmt.Sprintf("exception at line %d: %s %s", d.LineNumber+1, d.Text, desc))
	case *log.EventEntryAdded:
		if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
			p.errs = append(p.errs, "log: "+e.Entry.Text)
		}
	case *network.EventRequestWillBeSent:
		if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
			p.foreign = append(p.foreign, u)
		}
	}
}

// step runs one action of the page with a deadline (the browser itself lives as long as p.ctx).
func step[T any](p *page, a chromedp.Action[T]) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.t.Fatalf("chromium: %v (console: %v)", err, p.errs)
	}
	return v
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	step(p, chromedp.Steps(actions...))
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return strings.TrimSpace(step(p, chromedp.TextContent(chromedp.CSS(sel))))
}

// waitText waits until sel shows want (the filters apply after a short pause for typing).
func (p *page) waitText(sel, want string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := p.text(sel)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s shows %q, want %q", sel, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *page) checkClean() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("the page logged an error: %s", e)
	}
	for _, u := range p.foreign {
		p.t.Errorf("the page requested %s: it must be self-contained", u)
	}
}
