package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
)

// Batching is how an archiver target grouped its events, read from its own /metrics just before
// SIGTERM. It is what bounds a durable ack with a fixed number of connections: each connection
// has one request in flight, so req/s is about events per commit / time per commit cycle.
type Batching struct {
	Accepted   float64       `json:"accepted"`             // events made durable and answered 200
	Commits    float64       `json:"spool_commits"`        // spool group commits (write + fdatasync)
	CommitMean time.Duration `json:"spool_commit_mean_ns"` // mean write + fdatasync
	Objects    float64       `json:"objects_stored"`       // objects written (store mode: one Put each)
	PutMean    time.Duration `json:"upload_mean_ns"`       // mean successful object write
}

// scrapeBatching reads the archiver's counters from http://addr/metrics.
func scrapeBatching(ctx context.Context, addr string) (*Batching, error) {
	f, err := metrics.Scrape(ctx, "http://"+addr+"/metrics")
	if err != nil {
		return nil, err
	}
	const p = "livehook_archiver_"
	v := func(name string) float64 { x, _ := f.Value(p + name); return x }
	mean := func(name string) time.Duration { return time.Duration(f.Mean(p+name) * float64(time.Second)) }
	return &Batching{
		Accepted:   v("accepted_total"),
		Commits:    v("spool_commits_total"),
		CommitMean: mean("spool_commit_seconds"),
		Objects:    v("objects_stored_total"),
		PutMean:    mean("upload_seconds"),
	}, nil
}

// String is the report line: events per durable write and what one costs.
func (b *Batching) String() string {
	if b.Commits > 0 {
		return fmt.Sprintf("%.1f events per group commit (%.0f commits), write + fdatasync mean %s",
			b.Accepted/b.Commits, b.Commits, fmtDur(b.CommitMean))
	}
	if b.Objects > 0 {
		return fmt.Sprintf("%.1f events per object Put (%.0f Puts), Put mean %s",
			b.Accepted/b.Objects, b.Objects, fmtDur(b.PutMean))
	}
	return "no durable writes recorded"
}
