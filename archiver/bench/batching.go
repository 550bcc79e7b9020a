package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading /metrics: %s", resp.Status)
	}
	v := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue // only unlabelled series are needed
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			v[name] = f
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /metrics: %w", err)
	}
	const p = "livehook_archiver_"
	mean := func(base string) time.Duration {
		if n := v[p+base+"_count"]; n > 0 {
			return time.Duration(v[p+base+"_sum"] / n * float64(time.Second))
		}
		return 0
	}
	return &Batching{
		Accepted:   v[p+"accepted_total"],
		Commits:    v[p+"spool_commits_total"],
		CommitMean: mean("spool_commit_seconds"),
		Objects:    v[p+"objects_stored_total"],
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
