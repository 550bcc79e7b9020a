package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/spool"
)

// Check is one performance target, evaluated on this run.
type Check struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Target string `json:"target"`
	Pass   bool   `json:"pass"`
	// Hard checks are correctness (nothing lost, nothing duplicated, no error answered in the
	// outage, the harness ran); the others are speed and size targets.
	Hard    bool `json:"hard"`
	Skipped bool `json:"skipped,omitempty"` // a peer needed for the ratio was not run
	// Baseline rows are measured for comparison only (e.g. overload control off): shown, never failing.
	Baseline bool `json:"baseline,omitempty"`
}

func (c Check) verdict() string {
	switch {
	case c.Skipped:
		return "SKIP"
	case c.Baseline:
		return "baseline"
	case c.Pass:
		return "PASS"
	default:
		return "FAIL"
	}
}

// Failed reports whether a check fails the run: any hard failure, and soft ones unless noFail.
func Failed(checks []Check, noFail bool) bool {
	for _, c := range checks {
		if c.Skipped || c.Pass || (c.Baseline && !c.Hard) {
			continue
		}
		if c.Hard || !noFail {
			return true
		}
	}
	return false
}

const maxRSS = 128 << 20

// evaluate turns the rows into PASS/FAIL checks against the targets (docs/performance.md).
func evaluate(r *Results) []Check {
	var checks []Check
	add := func(c Check) { checks = append(checks, c) }
	ok := func(t *TargetResult) bool { return t != nil && t.Err == "" && t.Load != nil }
	ratio := func(name string, a, b *TargetResult, get func(*TargetResult) float64, min float64) {
		c := Check{Name: name, Target: fmt.Sprintf(">= %gx", min)}
		if !ok(a) || !ok(b) || get(b) == 0 {
			c.Skipped, c.Value = true, "n/a"
			if ok(b) && get(b) == 0 {
				c.Skipped, c.Value = false, "peer measured 0"
			}
			add(c)
			return
		}
		x := get(a) / get(b)
		c.Value, c.Pass = fmt.Sprintf("%.2fx", x), x >= min
		add(c)
	}
	rps := func(t *TargetResult) float64 { return t.Load.ReqPerSec }

	// Every row: the harness ran it; archived rows: read back = 200s.
	for _, t := range r.Targets {
		if t.Err != "" {
			add(Check{Name: t.Name + ": ran to completion", Value: firstLine(t.Err), Target: "no error", Hard: true})
		}
		if t.ReadBack != nil && t.Archiver() {
			rb := t.ReadBack
			add(Check{
				Name:   t.Name + ": events read back = 200s answered",
				Value:  fmt.Sprintf("%d lines, %d unique, %d answered 200 (missing %d, duplicates %d, extra %d)", rb.Lines, rb.UniqueIDs, rb.Acked, rb.Missing, rb.Duplicates, rb.Extra),
				Target: "missing 0, duplicates 0",
				Pass:   rb.OK && rb.UniqueIDs >= rb.Acked,
				Hard:   true,
			})
		}
	}

	bare, fsync, naive := r.Target("bare"), r.Target("fsync"), r.Target("naive")
	if spool := r.Target("spool"); spool != nil {
		ratio("spool: req/s vs bare", spool, bare, rps, 0.5)
		ratio("spool: req/s vs naive", spool, naive, rps, 10)
		ratio("spool: req/s vs fsync", spool, fsync, rps, 5)
		c := Check{Name: "spool: p99 vs bare p99", Target: "<= 2x"}
		if ok(spool) && ok(bare) && bare.Load.P99 > 0 {
			x := float64(spool.Load.P99) / float64(bare.Load.P99)
			c.Value, c.Pass = fmt.Sprintf("%.2fx (%s vs %s)", x, fmtDur(spool.Load.P99), fmtDur(bare.Load.P99)), x <= 2
		} else {
			c.Skipped, c.Value = true, "n/a"
		}
		add(c)
		if ok(spool) {
			add(errorsCheck("spool", spool, false))
		}
		if ok(spool) && spool.ReadBack != nil {
			rb := spool.ReadBack
			per := 0.0
			if rb.Lines > 0 {
				per = float64(rb.Objects) / float64(rb.Lines) * 1000
			}
			add(Check{Name: "spool: objects per 1,000 events", Value: fmt.Sprintf("%.3f (%d objects, %d events)", per, rb.Objects, rb.Lines),
				Target: "<= 1", Pass: rb.Lines > 0 && per <= 1})
		}
		if ok(spool) {
			add(rssCheck("spool", spool))
		}
	}
	for _, t := range r.Targets {
		if strings.HasPrefix(t.Name, "store") {
			// The target is store mode as configured by default; the run with another
			// --flush-interval is there to show how latency relates to it (see storeNotes).
			if t.FlushInterval == 0 {
				ratio(t.Name+": req/s vs naive", t, naive, rps, 5)
			}
			if ok(t) {
				add(errorsCheck(t.Name, t, false))
			}
		}
	}
	if o := r.Target("outage"); o != nil && ok(o) {
		add(errorsCheck("outage", o, true))
		if o.Outage != nil && o.Outage.Err != "" {
			add(Check{Name: "outage: S3 server stopped and restarted", Value: o.Outage.Err, Target: "no error", Hard: true})
		}
		add(rssCheck("outage", o))
	}
	return checks
}

func errorsCheck(name string, t *TargetResult, hard bool) Check {
	n := t.Load.AllErrors
	v := fmt.Sprintf("%d", n)
	if n > 0 && len(t.Load.ErrorSamples) > 0 {
		v += " (" + firstLine(t.Load.ErrorSamples[0]) + ")"
	}
	return Check{Name: name + ": errors answered (warm-up included)", Value: v, Target: "0", Pass: n == 0, Hard: hard}
}

func rssCheck(name string, t *TargetResult) Check {
	peak := t.PeakRSSMax()
	return Check{Name: name + ": peak RSS", Value: fmtBytes(peak), Target: "<= 128 MiB", Pass: peak > 0 && peak <= maxRSS}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// WriteMarkdown prints the table, the ratios, the checks and the notes.
func WriteMarkdown(w io.Writer, r *Results) {
	fmt.Fprintf(w, "## Archiver benchmark (%s)\n\n", r.Machine)
	fmt.Fprintf(w, "%d connections, %s warm-up + %s measured per target, ~%d-byte callback bodies, run tag %s.\n\n",
		r.Options.Conns, r.Options.Warmup, r.Options.Duration, len(bodyFor(r.Tag, 0, 0, 0)), r.Tag)
	fmt.Fprintln(w, "| target | req/s | p50 | p99 | p99.9 | errors | 200s (incl. warm-up) | objects | read back (lines / unique) | missing / dup | peak RSS (HWM / sampled) | SIGTERM to exit |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range r.Targets {
		name := t.Name
		if t.Archiver() {
			name = "archiver " + name
		}
		if t.Load == nil {
			fmt.Fprintf(w, "| %s | failed: %s | | | | | | | | | | |\n", name, firstLine(t.Err))
			continue
		}
		l := t.Load
		objects, rbs, miss := "-", "-", "-"
		if rb := t.ReadBack; rb != nil {
			objects = fmt.Sprint(rb.Objects)
			if t.Name == "fsync" {
				objects = "1 file"
			}
			rbs = fmt.Sprintf("%d / %d", rb.Lines, rb.UniqueIDs)
			miss = fmt.Sprintf("%d / %d", rb.Missing, rb.Duplicates)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %d | %d | %s | %s | %s | %s / %s | %s |\n",
			name, l.ReqPerSec, fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.P999), l.AllErrors, l.AllOK,
			objects, rbs, miss, fmtBytes(t.PeakRSS), fmtBytes(t.MaxSampledRSS), t.Drain.Round(time.Millisecond))
	}

	// Ratios of each archiver row to its peers.
	bare, fsync, naive := r.Target("bare"), r.Target("fsync"), r.Target("naive")
	var arch []*TargetResult
	for _, t := range r.Targets {
		if t.Archiver() && t.Name != "outage" && t.Load != nil {
			arch = append(arch, t)
		}
	}
	if len(arch) > 0 {
		fmt.Fprintln(w)
		head := "| ratio |"
		sep := "|---|"
		for _, t := range arch {
			head += " archiver " + t.Name + " |"
			sep += "---:|"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, sep)
		row := func(label string, peer *TargetResult, f func(a, p *LoadResult) float64) {
			if peer == nil || peer.Load == nil {
				return
			}
			line := "| " + label + " |"
			for _, t := range arch {
				line += fmt.Sprintf(" %.2fx |", f(t.Load, peer.Load))
			}
			fmt.Fprintln(w, line)
		}
		rps := func(a, p *LoadResult) float64 { return safeDiv(a.ReqPerSec, p.ReqPerSec) }
		p50 := func(a, p *LoadResult) float64 { return safeDiv(float64(a.P50), float64(p.P50)) }
		p99 := func(a, p *LoadResult) float64 { return safeDiv(float64(a.P99), float64(p.P99)) }
		row("req/s / bare", bare, rps)
		row("req/s / fsync", fsync, rps)
		row("req/s / naive", naive, rps)
		row("p50 / bare p50", bare, p50)
		row("p99 / bare p99", bare, p99)
		row("p50 / naive p50", naive, p50)
		row("p99 / naive p99", naive, p99)
	}

	if o := r.Target("outage"); o != nil && o.Outage != nil && o.Load != nil {
		f := o.Outage
		fmt.Fprintf(w, "\nOutage run (spool mode): load %s, VersityGW stopped at %s for %s (back at %s), load until %s.\n",
			fmtSec(f.Before+f.Down+f.After), fmtSec(f.StoppedAfter), f.Down, fmtSec(f.RestartedAfter), fmtSec(f.Before+f.Down+f.After))
		fmt.Fprintf(w, "200s: %d before (%.0f/s), %d while down (%.0f/s), %d after (%.0f/s); errors %d; p99 %s, max %s; peak RSS %s; SIGTERM to exit %s.\n",
			f.OKBefore, rate(f.OKBefore, f.Before), f.OKDown, rate(f.OKDown, f.Down), f.OKAfter, rate(f.OKAfter, f.After),
			o.Load.AllErrors, fmtDur(o.Load.P99), fmtDur(o.Load.Max), fmtBytes(o.PeakRSSMax()), o.Drain.Round(time.Millisecond))
	}

	var batching []string
	for _, t := range r.Targets {
		if t.Batching != nil {
			batching = append(batching, fmt.Sprintf("- archiver %s: %s", t.Name, t.Batching))
		}
	}
	if len(batching) > 0 {
		fmt.Fprintf(w, "\nDurable writes (from each archiver's /metrics; with %d connections, req/s is about events per write / time per write cycle):\n%s\n",
			r.Options.Conns, strings.Join(batching, "\n"))
	}

	if notes := storeNotes(r); notes != "" {
		fmt.Fprintf(w, "\n%s\n", notes)
	}

	fmt.Fprintln(w, "\n| check | value | target | result |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, c.Value, c.Target, c.verdict())
	}
	fmt.Fprintf(w, "\nTotal time %s.\n", r.Elapsed.Round(time.Second))
}

// storeNotes states how store-mode latency relates to --flush-interval, from the runs made.
func storeNotes(r *Results) string {
	var parts []string
	related, independent := 0, 0
	for _, t := range r.Targets {
		if !strings.HasPrefix(t.Name, "store") || t.Load == nil || t.Load.OK == 0 {
			continue
		}
		fi := t.FlushInterval
		label := "--flush-interval " + fi.String()
		if fi == 0 {
			fi = spool.DefaultFlushInterval
			label = "--flush-interval " + fi.String() + " (default)"
		}
		parts = append(parts, fmt.Sprintf("%s: p50 %s, p99 %s, %.0f req/s", label, fmtDur(t.Load.P50), fmtDur(t.Load.P99), t.Load.ReqPerSec))
		switch {
		case t.Load.P50 >= fi/2:
			related++
		case t.Load.P99 < fi/10:
			independent++
		}
	}
	if len(parts) == 0 {
		return ""
	}
	s := "Store mode latency vs --flush-interval: " + strings.Join(parts, "; ") + ". "
	switch {
	case related == len(parts):
		s += "Latency follows the flush interval: a 200 waits for the batch's timer."
	case independent == len(parts):
		s += "Latency does not depend on the flush interval (p99 far below it): a 200 waits for the next upload, " +
			"which starts as soon as the previous one finishes, so it is about one S3 PUT plus queueing."
	default:
		s += "Mixed: compare p50 with each interval."
	}
	return s
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
}

func fmtSec(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func fmtBytes(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
