package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
)

// relayMetrics are the per-destination metrics (the names are the contract with the monitoring
// mixin; every one is labelled destination).
type relayMetrics struct {
	delivered *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	dead      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

func newMetrics(reg *metrics.Registry, r *Relay) *relayMetrics {
	m := &relayMetrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "archiver_forward_delivered_total", Help: "Events delivered to a destination (2xx)."}, []string{"destination"}),
		attempts:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "archiver_forward_attempts_total", Help: "Forwarding attempts by outcome: delivered, retry (408, 429, 5xx), rejected (other statuses), error (timeout, connection)."}, []string{"destination", "outcome"}),
		dead:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "archiver_forward_dead_letters_total", Help: "Events that became dead letters, by reason: rejected, max_age, spool_full, unreadable."}, []string{"destination", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "archiver_forward_delivery_seconds", Help: "Time from an event's received_at to its delivery.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600}}, []string{"destination"}),
	}
	pr := prometheus.NewRegistry()
	if reg != nil {
		pr = reg.Prometheus()
	}
	pr.MustRegister(m.delivered, m.attempts, m.dead, m.latency, queueCollector{r})
	return m
}

var (
	queueDesc = prometheus.NewDesc("archiver_forward_queue_events", "Events in the spool a destination has not passed yet (removed destinations included).", []string{"destination"}, nil)
	lagDesc   = prometheus.NewDesc("archiver_forward_lag_seconds", "Age of the oldest undelivered event of a destination (0 when caught up).", []string{"destination"}, nil)
)

// queueCollector reads queue length and lag at scrape time.
type queueCollector struct{ r *Relay }

func (c queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc; ch <- lagDesc }

func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	segs := r.o.Spool.Segments()
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, w := range r.workers {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(queued(segs, w.pos.seq.Load(), w.pos.idx.Load())), name)
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, w.lag(now).Seconds(), name)
	}
	for name, p := range r.parked {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(queued(segs, p.seq.Load(), p.idx.Load())), name)
	}
}
