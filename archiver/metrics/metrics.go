// Package metrics is the archiver's Prometheus instrumentation, on client_golang: counters,
// labelled counters, gauges read at scrape time and histograms, plus the standard Go runtime and
// process collectors. The small wrapper types keep call sites independent of the library and let
// the archiver read its own counters (for its shutdown log line) without a scrape.
package metrics

import (
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Counter only goes up.
type Counter struct{ c prometheus.Counter }

// Inc adds one.
func (c *Counter) Inc() { c.c.Inc() }

// Add adds n.
func (c *Counter) Add(n uint64) { c.c.Add(float64(n)) }

// Value is the current count.
func (c *Counter) Value() uint64 {
	var m dto.Metric
	if err := c.c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}

// CounterVec is a counter per value of one label. Values registered up front appear at 0.
type CounterVec struct {
	v *prometheus.CounterVec
	m sync.Map // label value -> *Counter, so With is cheap on the hot path
}

// With returns the counter for a label value (created on first use).
func (v *CounterVec) With(value string) *Counter {
	if c, ok := v.m.Load(value); ok {
		return c.(*Counter)
	}
	value = strings.Clone(value) // the caller's string may alias a pooled request buffer
	c, _ := v.m.LoadOrStore(value, &Counter{c: v.v.WithLabelValues(value)})
	return c.(*Counter)
}

// Gauge is a value that goes up and down, here mostly "time of the last success".
type Gauge struct{ g prometheus.Gauge }

// SetToCurrentTime sets the gauge to the current Unix time in seconds.
func (g *Gauge) SetToCurrentTime() { g.g.SetToCurrentTime() }

// Set sets the gauge to v.
func (g *Gauge) Set(v float64) { g.g.Set(v) }

// Value is the gauge's current value.
func (g *Gauge) Value() float64 {
	var m dto.Metric
	if err := g.g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}

// Histogram counts observations into cumulative buckets; a scrape sees _count, _sum and the
// buckets from one consistent state.
type Histogram struct{ h prometheus.Histogram }

// Observe records v.
func (h *Histogram) Observe(v float64) { h.h.Observe(v) }

// Registry holds the metric families. NewRegistry includes the Go runtime (go_*) and process
// (process_*) collectors.
type Registry struct{ r *prometheus.Registry }

// NewRegistry returns a registry with the standard Go and process collectors.
func NewRegistry() *Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Registry{r: r}
}

// Prometheus is the underlying registry, for registering collectors this package has no helper for.
func (r *Registry) Prometheus() *prometheus.Registry { return r.r }

// Counter registers a counter. Registering a name twice is a programming error and panics at
// startup.
func (r *Registry) Counter(name, help string) *Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	r.r.MustRegister(c)
	return &Counter{c: c}
}

// CounterVec registers a counter with one label, pre-creating the given values.
func (r *Registry) CounterVec(name, help, label string, values ...string) *CounterVec {
	v := &CounterVec{v: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})}
	r.r.MustRegister(v.v)
	for _, x := range values {
		v.With(x)
	}
	return v
}

// Gauge registers a gauge (0 until set).
func (r *Registry) Gauge(name, help string) *Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	r.r.MustRegister(g)
	return &Gauge{g: g}
}

// BuildInfo registers NAME{version, revision, goversion} 1: which build is running, for dashboards
// and for alerts that join on it. revision is the VCS commit go build stamped ("unknown" without).
func (r *Registry) BuildInfo(name, version string) {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "Build of the running archiver: version (release tag), revision (VCS commit), goversion; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()}})
	g.Set(1)
	r.r.MustRegister(g)
}

// GaugeFunc registers a gauge read at scrape time.
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Histogram registers a histogram with the given upper bounds (ascending).
func (r *Registry) Histogram(name, help string, bounds []float64) *Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: append([]float64(nil), bounds...)})
	r.r.MustRegister(h)
	return &Histogram{h: h}
}

// WriteTo writes every family in the Prometheus text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	fams, err := r.r.Gather()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: w}
	enc := expfmt.NewEncoder(cw, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
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

// Handler serves the registry at /metrics (text format, or what the scraper negotiates).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.r, promhttp.HandlerOpts{})
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
	LastUpload      *Gauge      // Unix time of the last archive object stored
	// AcceptedDomain is Accepted by push domain; the label is bounded: a domain named in --keys or
	// --allow-domain, else "other" (intake decides), so a sender cannot grow the series.
	AcceptedDomain *CounterVec
	DigestsWritten *Counter // signed digests stored
	DigestFailures *Counter // failed digest writes (the next digest retries them)
	LastDigest     *Gauge   // Unix time of the last digest stored
	// ReloadFailures counts SIGHUP reloads that kept the old value, by file (keys, forward, tls).
	ReloadFailures *CounterVec
}

// OtherDomain is the AcceptedDomain label of domains not named in the configuration.
const OtherDomain = "other"

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
		LastUpload:      r.Gauge(p+"last_upload_timestamp_seconds", "Unix time of the last archive object stored (0: none since start)."),
		AcceptedDomain:  r.CounterVec(p+"domain_accepted_total", "Events accepted (as accepted_total), by push domain: domains named in --keys or --allow-domain, every other one as \"other\".", "domain", OtherDomain),
		DigestsWritten:  r.Counter(p+"digests_written_total", "Signed digests stored (--digest-key)."),
		DigestFailures:  r.Counter(p+"digest_failures_total", "Digest writes that failed; the entries go into the next digest, which is retried."),
		LastDigest:      r.Gauge(p+"last_digest_timestamp_seconds", "Unix time of the last signed digest stored (0: none since start)."),
		ReloadFailures:  r.CounterVec(p+"reload_failures_total", "SIGHUP reloads that failed and kept the previous value, by file: keys (--keys), forward (--forward-config) or tls (--tls-cert/--tls-key).", "file", "keys", "forward", "tls"),
	}
}
