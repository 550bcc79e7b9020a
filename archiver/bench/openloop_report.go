package bench

import (
	"fmt"
	"io"
	"time"
)

// Open-loop goals (docs/performance.md).
const (
	olCPURatio5k   = 1.5                  // archiver CPU per callback vs bare at 5k/s
	olP99At10k     = 5 * time.Millisecond // archiver p99 at 10k/s
	olIdleCPU      = 10.0                 // ms of CPU per second idle (1% of a core)
	olOverloadGood = 0.8                  // goodput at 2x capacity vs peak
	olAnswerBound  = time.Second          // no answer later than this
	olCapacityGood = 0.95                 // a rate is within capacity when this share is 200
)

func (t *TargetRun) row(rate int) *RateResult {
	for _, r := range t.Rows {
		if r.Offered == rate {
			return r
		}
	}
	return nil
}

func (r *OpenLoopResults) target(name string) *TargetRun {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// capacity is the highest offered rate the target answered (almost) all with 200 within the
// answer bound, and peak its best goodput.
func (t *TargetRun) capacity() (capacity int, peak float64) {
	for _, r := range t.Rows {
		peak = max(peak, r.Goodput)
		if r.Goodput >= olCapacityGood*float64(r.Offered) && r.P99 <= olAnswerBound && r.Offered > capacity {
			capacity = r.Offered
		}
	}
	return capacity, peak
}

// OpenLoopChecks evaluates the run against the goals: hard checks (every target ran, nothing
// answered 200 is missing from the archive) and speed goals.
func OpenLoopChecks(r *OpenLoopResults) []Check {
	var checks []Check
	add := func(c Check) { checks = append(checks, c) }
	bare := r.target("bare")
	for _, t := range r.Targets {
		add(Check{Name: t.Name + " ran", Value: orOK(t.Err), Target: "no error", Pass: t.Err == "", Hard: true})
		if referenceTarget(t.Name) {
			continue
		}
		if t.Err == "" {
			add(Check{Name: t.Name + ": every 200 read back", Value: fmt.Sprintf("%d of %d (%d missing)", t.Found, t.Acked, t.Missing),
				Target: "0 missing", Pass: t.Missing == 0, Hard: true})
		}
		add(Check{Name: t.Name + ": idle CPU", Value: fmt.Sprintf("%.1f ms/s", t.IdleCPU), Target: fmt.Sprintf("<= %.0f ms/s", olIdleCPU), Pass: t.IdleCPU <= olIdleCPU})
		c := Check{Name: t.Name + ": CPU per callback vs bare at 5k/s", Target: fmt.Sprintf("<= %.1fx", olCPURatio5k)}
		if a, b := t.row(5000), bareRow(bare, 5000); a == nil || b == nil || b.CPUPer1k == 0 {
			c.Skipped, c.Value = true, "n/a"
		} else {
			ratio := a.CPUPer1k / b.CPUPer1k
			c.Value, c.Pass = fmt.Sprintf("%.2fx (%.0f vs %.0f ms per 1k)", ratio, a.CPUPer1k, b.CPUPer1k), ratio <= olCPURatio5k
		}
		add(c)
		c = Check{Name: t.Name + ": p99 at 10k/s", Target: "< " + fmtDur(olP99At10k)}
		if a := t.row(10000); a == nil {
			c.Skipped, c.Value = true, "n/a"
		} else {
			c.Value, c.Pass = fmtDur(a.P99), a.P99 < olP99At10k && a.Errors == 0
		}
		add(c)
		add(overloadCheck(t))
	}
	return checks
}

func bareRow(bare *TargetRun, rate int) *RateResult {
	if bare == nil {
		return nil
	}
	return bare.row(rate)
}

// overloadCheck: at the first offered rate of at least twice the capacity, goodput stays at least
// 80% of the peak and every request is answered within a second.
func overloadCheck(t *TargetRun) Check {
	c := Check{Name: t.Name + ": at 2x capacity", Target: fmt.Sprintf(">= %.0f%% of peak goodput, every answer <= %s", olOverloadGood*100, olAnswerBound)}
	capacity, peak := t.capacity()
	var over *RateResult
	for _, r := range t.Rows {
		if capacity > 0 && r.Offered >= 2*capacity && (over == nil || r.Offered < over.Offered) {
			over = r
		}
	}
	if over == nil {
		c.Skipped, c.Value = true, fmt.Sprintf("capacity %d/s: no rate of twice that was offered", capacity)
		return c
	}
	c.Value = fmt.Sprintf("capacity %d/s, peak %.0f/s; at %d/s: %.0f/s (%.0f%%), max %s, %d later than 1s, %d unanswered",
		capacity, peak, over.Offered, over.Goodput, 100*safeDiv(over.Goodput, peak), fmtDur(over.Max), over.Late, over.Errors)
	c.Pass = over.Goodput >= olOverloadGood*peak && over.Max <= olAnswerBound && over.Errors == 0
	return c
}

func orOK(s string) string {
	if s == "" {
		return "ok"
	}
	return firstLine(s)
}

// WriteOpenLoopMarkdown prints the run as one table plus the checks.
func WriteOpenLoopMarkdown(w io.Writer, r *OpenLoopResults, checks []Check) {
	fmt.Fprintf(w, "## Open-loop benchmark, %s\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "%s; load average at the start %s; %s per rate, %s arrivals; latency from each request's intended send time.\n\n",
		r.Machine, r.Load, r.Options.Duration, r.Options.Arrivals)
	fmt.Fprintln(w, "| target | offered/s | 200/s within 1 s | 503 | no answer | p50 | p99 | p99.9 | max | > 1 s | CPU per 1k | vs bare | RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	bare := r.target("bare")
	for _, t := range r.Targets {
		if t.Err != "" && len(t.Rows) == 0 {
			fmt.Fprintf(w, "| %s | | | | | | | | | | | | error: %s |\n", t.Name, firstLine(t.Err))
			continue
		}
		for _, row := range t.Rows {
			vs := ""
			if b := bareRow(bare, row.Offered); b != nil && b.CPUPer1k > 0 && t.Name != "bare" {
				vs = fmt.Sprintf("%.2fx", row.CPUPer1k/b.CPUPer1k)
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %d | %d | %s | %s | %s | %s | %d | %.0f ms | %s | %s |\n",
				t.Name, row.Offered, row.Goodput, row.Shed, row.Errors, fmtDur(row.P50), fmtDur(row.P99), fmtDur(row.P999),
				fmtDur(row.Max), row.Late, row.CPUPer1k, vs, fmtBytes(row.RSS))
		}
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		line := fmt.Sprintf("- %s: idle CPU %.1f ms/s, peak RSS %s", t.Name, t.IdleCPU, fmtBytes(t.PeakRSS))
		if !referenceTarget(t.Name) {
			line += fmt.Sprintf(", %d events answered 200, %d read back from the archive, %d missing", t.Acked, t.Found, t.Missing)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| check | value | goal | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range checks {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, c.Value, c.Target, c.verdict())
	}
}
