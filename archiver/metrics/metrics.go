// Package metrics is a small, dependency-free Prometheus text-format exposition: counters, labelled
// counters, gauges read at scrape time, and histograms. Updates are lock-free atomics because they
// happen on the intake hot path.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// Counter only goes up.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value is the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// CounterVec is a counter per value of one label. Values registered up front appear at 0.
type CounterVec struct {
	label string
	mu    sync.RWMutex
	m     map[string]*Counter
}

// With returns the counter for a label value (created on first use).
func (v *CounterVec) With(value string) *Counter {
	v.mu.RLock()
	c := v.m[value]
	v.mu.RUnlock()
	if c != nil {
		return c
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if c = v.m[value]; c == nil {
		c = &Counter{}
		v.m[value] = c
	}
	return c
}

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1, last is +Inf
	sum    atomic.Uint64   // float64 bits
	count  atomic.Uint64
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

type family struct {
	name, help, typ string
	write           func(w *bufio.Writer, name string)
}

// Registry holds metric families in registration order.
type Registry struct {
	mu       sync.Mutex
	families []family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(f family) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.families = append(r.families, f)
}

// Counter registers a counter.
func (r *Registry) Counter(name, help string) *Counter {
	c := &Counter{}
	r.add(family{name, help, "counter", func(w *bufio.Writer, name string) {
		fmt.Fprintf(w, "%s %d\n", name, c.Value())
	}})
	return c
}

// CounterVec registers a counter with one label, pre-creating the given values.
func (r *Registry) CounterVec(name, help, label string, values ...string) *CounterVec {
	v := &CounterVec{label: label, m: make(map[string]*Counter)}
	for _, x := range values {
		v.m[x] = &Counter{}
	}
	r.add(family{name, help, "counter", func(w *bufio.Writer, name string) {
		v.mu.RLock()
		keys := make([]string, 0, len(v.m))
		for k := range v.m {
			keys = append(keys, k)
		}
		v.mu.RUnlock()
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s{%s=%s} %d\n", name, v.label, strconv.Quote(k), v.With(k).Value())
		}
	}})
	return v
}

// GaugeFunc registers a gauge read at scrape time.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.add(family{name, help, "gauge", func(w *bufio.Writer, name string) {
		fmt.Fprintf(w, "%s %s\n", name, formatFloat(f()))
	}})
}

// Histogram registers a histogram with the given upper bounds (ascending).
func (r *Registry) Histogram(name, help string, bounds []float64) *Histogram {
	h := &Histogram{bounds: append([]float64(nil), bounds...), counts: make([]atomic.Uint64, len(bounds)+1)}
	r.add(family{name, help, "histogram", func(w *bufio.Writer, name string) {
		var cum uint64
		for i, b := range h.bounds {
			cum += h.counts[i].Load()
			fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, formatFloat(b), cum)
		}
		cum += h.counts[len(h.bounds)].Load()
		fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n", name, cum)
		fmt.Fprintf(w, "%s_sum %s\n", name, formatFloat(math.Float64frombits(h.sum.Load())))
		fmt.Fprintf(w, "%s_count %d\n", name, h.count.Load())
	}})
	return h
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// WriteTo writes every family in the Prometheus text exposition format (version 0.0.4).
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := append([]family(nil), r.families...)
	r.mu.Unlock()
	cw := &countingWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		f.write(bw, f.name)
	}
	err := bw.Flush()
	return cw.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Handler serves the registry at /metrics.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = r.WriteTo(w)
	})
}

// Archiver is the archiver's set of metrics. Every field is registered by NewArchiver.
type Archiver struct {
	Registry *Registry

	Received        *Counter    // callback requests received
	Accepted        *Counter    // events made durable and answered 200 (spool or store)
	Stored          *Counter    // events written to archive objects in the store
	Duplicates      *Counter    // redeliveries answered 200 without storing
	Rejected        *CounterVec // requests refused, by reason
	ObjectsStored   *Counter    // archive objects written
	UploadFailures  *CounterVec // failed object writes (each retried), by kind (storage.Kinds)
	ObjectConflicts *Counter    // objects written under a fresh name because theirs held other bytes
	UploadSeconds   *Histogram  // duration of one successful object write
	SpoolCommits    *Counter    // group commits (write + fdatasync) of the spool
	SpoolCommitSecs *Histogram  // duration of one group commit
	RejectedSamples *Counter    // rejected-request samples written
	SamplesDropped  *Counter    // rejected-request samples dropped (rate limit or full queue)
	SpoolDamaged    *Counter    // damaged spool records set aside (not uploaded)
	SpoolSetAside   *Counter    // spool segments set aside whole (header unreadable)
}

// UploadBuckets are the upload_seconds histogram bounds.
var UploadBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// CommitBuckets are the spool_commit_seconds histogram bounds.
var CommitBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// NewArchiver registers the archiver's metrics; reasons pre-creates rejected_total series.
func NewArchiver(reasons []string) *Archiver {
	r := NewRegistry()
	const p = "livehook_archiver_"
	return &Archiver{
		Registry:        r,
		Received:        r.Counter(p+"received_total", "Callback requests received on /callback."),
		Accepted:        r.Counter(p+"accepted_total", "Events made durable (spooled or stored) and answered 200."),
		Stored:          r.Counter(p+"stored_total", "Events written to archive objects in the store."),
		Duplicates:      r.Counter(p+"duplicates_total", "Redelivered events answered 200 without being stored again."),
		Rejected:        r.CounterVec(p+"rejected_total", "Callback requests refused, by reason.", "reason", reasons...),
		ObjectsStored:   r.Counter(p+"objects_stored_total", "Archive objects written to the store."),
		UploadFailures:  r.CounterVec(p+"upload_failures_total", "Failed archive object writes (each is retried), by kind; access_denied, no_such_bucket and kms need an operator.", "kind"),
		ObjectConflicts: r.Counter(p+"object_conflicts_total", "Archive objects written under a fresh name because their name already held different bytes (never overwritten)."),
		UploadSeconds:   r.Histogram(p+"upload_seconds", "Duration of successful archive object writes.", UploadBuckets),
		SpoolCommits:    r.Counter(p+"spool_commits_total", "Spool group commits (one write and one fdatasync for every event waiting); accepted_total / spool_commits_total is the mean batch."),
		SpoolCommitSecs: r.Histogram(p+"spool_commit_seconds", "Duration of one spool group commit (write + fdatasync).", CommitBuckets),
		RejectedSamples: r.Counter(p+"rejected_samples_total", "Rejected-request samples written under _rejected/."),
		SamplesDropped:  r.Counter(p+"rejected_samples_dropped_total", "Rejected-request samples not written (rate limit or queue full)."),
		SpoolDamaged:    r.Counter(p+"spool_damaged_records_total", "Damaged spool records set aside for inspection instead of uploaded (the file is named in the log)."),
		SpoolSetAside:   r.Counter(p+"spool_segments_set_aside_total", "Spool segments set aside whole because their header cannot be read."),
	}
}
