package bench

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
)

// TestScrapeBatching reads the figures from the archiver's real metrics registry, so a renamed
// metric breaks this test rather than silently emptying the report.
func TestScrapeBatching(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *metrics.Archiver)
		want   Batching
		line   string
	}{
		{
			name: "spool",
			record: func(m *metrics.Archiver) {
				m.Accepted.Add(90)
				for range 5 {
					m.SpoolCommits.Inc()
					m.SpoolCommitSecs.Observe(0.0005)
				}
				m.ObjectsStored.Inc()
				m.UploadSeconds.Observe(0.02)
			},
			want: Batching{Accepted: 90, Commits: 5, CommitMean: 500 * time.Microsecond, Objects: 1, PutMean: 20 * time.Millisecond},
			line: "18.0 events per group commit (5 commits), write + fdatasync mean 500µs",
		},
		{
			name: "store",
			record: func(m *metrics.Archiver) {
				m.Accepted.Add(30)
				m.ObjectsStored.Add(2)
				m.UploadSeconds.Observe(0.001)
				m.UploadSeconds.Observe(0.003)
			},
			want: Batching{Accepted: 30, Objects: 2, PutMean: 2 * time.Millisecond},
			line: "15.0 events per object Put (2 Puts), Put mean 2.00ms",
		},
		{
			name:   "idle",
			record: func(*metrics.Archiver) {},
			line:   "no durable writes recorded",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.NewArchiver(intake.Reasons)
			tc.record(m)
			srv := httptest.NewServer(m.Registry.Handler())
			defer srv.Close()
			got, err := scrapeBatching(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			// Means come from float sums: compare to the microsecond.
			got.CommitMean, got.PutMean = got.CommitMean.Round(time.Microsecond), got.PutMean.Round(time.Microsecond)
			if *got != tc.want {
				t.Errorf("scraped %+v, want %+v", *got, tc.want)
			}
			if s := got.String(); s != tc.line {
				t.Errorf("line %q, want %q", s, tc.line)
			}
		})
	}
}

func TestScrapeBatchingNoServer(t *testing.T) {
	srv := httptest.NewServer(nil)
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	if _, err := scrapeBatching(context.Background(), addr); err == nil || !strings.Contains(err.Error(), "/metrics") {
		t.Fatalf("err = %v, want one naming /metrics", err)
	}
}
