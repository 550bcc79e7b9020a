package report

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// -report-html names a page `archiver report` wrote, for BenchmarkOpenReport, e.g. the month of a
// million callbacks:
//
//	go test ./archiver/sessions -run '^$' -bench ReadMonth -benchtime 1x -bench-streams 2000 -bench-archive /tmp/month1m
//	archiver report --store file:///tmp/month1m --from 2026-11-01 --to 2026-11-30 --out /tmp/report1m.html
//	cd tests && go test ./report -run '^$' -bench OpenReport -benchtime 3x -report-html /tmp/report1m.html
var reportHTML = flag.String("report-html", "", "report page for BenchmarkOpenReport (required for it)")

// BenchmarkOpenReport opens the page in headless Chromium until its script has drawn the table
// and the timeline (open-s), then filters the table to one stream and back (filter-s) and sorts
// it by duration (sort-s): what an auditor waits for.
func BenchmarkOpenReport(b *testing.B) {
	if *reportHTML == "" {
		b.Skip("give -report-html FILE (see the comment on reportHTML)")
	}
	chromium := testenv.Binary(b, "chromium", findChromium)
	file, err := filepath.Abs(*reportHTML)
	if err != nil {
		b.Fatal(err)
	}
	var open, filter, sorting time.Duration
	for b.Loop() {
		b.StopTimer()
		p := newPage(b, chromium)
		b.StartTimer()
		t0 := time.Now()
		p.do(chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
		t1 := time.Now()
		// The filter runs 150 ms after the last keystroke; that pause is not the page's work.
		step(p, chromedp.Evaluate[bool](`(function(e){e.value='room_7';return e.dispatchEvent(new Event('input'))})(document.getElementById('f-stream'))`))
		waitChange(p, "#count")
		step(p, chromedp.Evaluate[bool](`(function(e){e.value='';return e.dispatchEvent(new Event('input'))})(document.getElementById('f-stream'))`))
		waitChange(p, "#count")
		t2 := time.Now()
		p.do(chromedp.Click(chromedp.CSS(`th[data-sort="dur"]`)))
		t3 := time.Now()
		open, filter, sorting = open+t1.Sub(t0), filter+t2.Sub(t1)-300*time.Millisecond, sorting+t3.Sub(t2)
		b.StopTimer()
		p.checkClean()
		p.close()
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(open.Seconds()/n, "open-s")
	b.ReportMetric(filter.Seconds()/n, "filter-s")
	b.ReportMetric(sorting.Seconds()/n, "sort-s")
}

// waitChange waits until sel's text changes.
func waitChange(p *page, sel string) {
	before := p.text(sel)
	deadline := time.Now().Add(time.Minute)
	for p.text(sel) == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}
