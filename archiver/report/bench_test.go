package report_test

import (
	"bytes"
	"context"
	"flag"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/report"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// -bench-archive names an archive made by the sessions package's BenchmarkReadMonth (a month of
// about a million callbacks with -bench-streams 2000):
//
//	go test ./archiver/sessions -run '^$' -bench ReadMonth -benchtime 1x -bench-streams 2000 -bench-archive /tmp/month1m
//	go test ./archiver/report -run '^$' -bench ReportMonth -benchtime 1x -bench-archive /tmp/month1m
var benchArchive = flag.String("bench-archive", "", "file store directory of BenchmarkReportMonth (required for it)")

// BenchmarkReportMonth makes the report of November from -bench-archive: the time to read and
// aggregate the sessions and to render the page, the page's size and the sessions in it.
func BenchmarkReportMonth(b *testing.B) {
	if *benchArchive == "" {
		b.Skip("give -bench-archive DIR (see the comment on benchArchive)")
	}
	ctx := context.Background()
	st, err := storage.Open(ctx, storage.Options{URL: "file://" + *benchArchive})
	if err != nil {
		b.Fatal(err)
	}
	var size, n int
	var collect, render time.Duration
	for b.Loop() {
		t0 := time.Now()
		d, err := report.Collect(ctx, st, sessions.Query{From: "2026-11-01", To: "2026-11-30"}, time.UTC, sessions.ReadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		d.Provenance.Generated = time.Now()
		t1 := time.Now()
		var buf bytes.Buffer
		if err := report.Render(&buf, d); err != nil {
			b.Fatal(err)
		}
		collect, render = collect+t1.Sub(t0), render+time.Since(t1)
		size, n = buf.Len(), d.Summary.Sessions
	}
	b.ReportMetric(float64(size)/(1<<20), "page-MiB")
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(float64(size)/float64(max(n, 1)), "bytes/session")
	b.ReportMetric(collect.Seconds()/float64(b.N), "read-s/op")
	b.ReportMetric(render.Seconds()/float64(b.N), "render-s/op")
}
