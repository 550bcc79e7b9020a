package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// The overload scenario (make bench-overload): store mode against VersityGW behind a slow store
// (slowStore: a fixed latency per S3 request and a shared upload bandwidth), so that what the
// archiver can make durable, not the two vCPUs, limits it. For each --max-queue-delay setting it
// ramps the offered rate until goodput stops following it (capacity: the peak goodput), restarts
// the archiver and offers twice that peak for a while, then stops it and reads every event
// answered 200 back from the store. The goal at twice capacity: goodput >= 80% of the
// peak, no answer later than 1 s, nothing acknowledged lost.

// OverloadOptions configure an overload run.
type OverloadOptions struct {
	Modes        []string      // --max-queue-delay values, one archiver each (e.g. auto, off)
	Ramp         []int         // offered rates of the capacity ramp, ascending
	RampDuration time.Duration // per ramp rate
	Factor       float64       // the overload: this times the peak goodput
	Duration     time.Duration // of the overload
	Latency      time.Duration // slow store: added to every S3 request
	BytesPerSec  int64         // slow store: upload bandwidth
	Timeout      time.Duration // the sender's timeout
	Conns        int           // the sender's connection cap
	ArchiverBin  string
	ExtraArgs    []string // more `archiver serve` flags
	WorkDir      string
	Log          io.Writer
}

// DefaultOverload is the standard run: 30 ms per request and 1 MiB/s make store mode's capacity
// about 2,000 callbacks/s (uncompressed objects, ~500 bytes per event line).
func DefaultOverload() OverloadOptions {
	return OverloadOptions{
		Modes:        []string{"auto", "off"},
		Ramp:         []int{500, 1000, 1500, 2000, 2500, 3000, 4000, 5000},
		RampDuration: 4 * time.Second,
		Factor:       2,
		Duration:     12 * time.Second,
		Latency:      30 * time.Millisecond,
		BytesPerSec:  1 << 20,
		Timeout:      10 * time.Second,
		Conns:        1000,
	}
}

// OverloadRun is one --max-queue-delay setting: its ramp, capacity and the overload row.
type OverloadRun struct {
	Mode     string        `json:"max_queue_delay"`
	Command  string        `json:"command"`
	Ramp     []*RateResult `json:"ramp"`
	Peak     float64       `json:"peak_goodput"`
	Over     *RateResult   `json:"overload,omitempty"`
	Acked    int           `json:"acked"`
	Found    int           `json:"found"`
	Missing  int           `json:"missing"`
	Err      string        `json:"error,omitempty"`
	LogPaths []string      `json:"logs,omitempty"`
}

// OverloadResults is a whole run.
type OverloadResults struct {
	Started time.Time       `json:"started"`
	Machine string          `json:"machine"`
	Load    string          `json:"load_avg"`
	Options OverloadOptions `json:"options"`
	Runs    []*OverloadRun  `json:"runs"`
}

// RunOverload runs the scenario for every mode.
func RunOverload(ctx context.Context, o OverloadOptions) (*OverloadResults, error) {
	d := DefaultOverload()
	if len(o.Modes) == 0 {
		o.Modes = d.Modes
	}
	if len(o.Ramp) == 0 {
		o.Ramp = d.Ramp
	}
	if o.RampDuration <= 0 {
		o.RampDuration = d.RampDuration
	}
	if o.Factor <= 0 {
		o.Factor = d.Factor
	}
	if o.Duration <= 0 {
		o.Duration = d.Duration
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if len(o.Modes) > 3 {
		return nil, fmt.Errorf("%d modes: at most 3 per run", len(o.Modes))
	}
	for _, r := range o.Ramp {
		if r <= 0 {
			return nil, fmt.Errorf("rate %d: rates are positive callbacks per second", r)
		}
	}
	r := newRunner(o.Log, Options{ArchiverBin: o.ArchiverBin})
	var err error
	if r.dir = o.WorkDir; r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "archiver-overload-*"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(r.dir)
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	res := &OverloadResults{
		Started: time.Now(),
		Machine: machineString(),
		Load:    loadAvg(),
		Options: o,
	}
	if err := r.buildArchiver(ctx); err != nil {
		return nil, err
	}
	stop, err := r.startS3(ctx)
	defer func() { _ = stop() }()
	if err != nil {
		return nil, err
	}
	slow, err := startSlowStore(r.vgw.Endpoint, o.Latency, o.BytesPerSec)
	if err != nil {
		return nil, err
	}
	defer slow.Close()
	keys, err := r.writeKeys()
	if err != nil {
		return nil, err
	}
	for i, mode := range o.Modes {
		res.Runs = append(res.Runs, r.overloadMode(ctx, o, slow.URL, keys, mode, i))
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("interrupted: %w", err)
		}
	}
	return res, nil
}

// overloadName is a mode's target name: its archive prefix and log names.
func overloadName(mode string) string {
	return "store-mqd-" + strings.NewReplacer(".", "_", ":", "_").Replace(mode)
}

func (r *runner) overloadMode(ctx context.Context, o OverloadOptions, endpoint, keys, mode string, group int) *OverloadRun {
	name := overloadName(mode)
	run := &OverloadRun{Mode: mode}
	acked := map[[16]byte]struct{}{}
	gen := &callbackGen{tag: r.tag, group: group, pubTS: r.pubTS}
	fail := func(err error) *OverloadRun {
		run.Err = err.Error()
		r.logf("max-queue-delay %s: %v", mode, err)
		return run
	}
	s := sender{Timeout: o.Timeout, Conns: o.Conns}
	// Phase 1: the ramp, until goodput stops following the offered rate.
	err := r.withOverloadArchiver(ctx, o, run, endpoint, keys, mode, name, "ramp", func(url string, pid int) error {
		for _, rate := range o.Ramp {
			row := r.attack(ctx, s, name, acked, gen, url, pid, rate, o.RampDuration)
			run.Ramp = append(run.Ramp, row)
			run.Peak = max(run.Peak, row.Goodput)
			r.logf("%s ramp %d/s: %.0f ok/s, %d shed, p99 %s max %s", name, rate, row.Goodput, row.Shed, fmtDur(row.P99), fmtDur(row.Max))
			if err := ctx.Err(); err != nil {
				return err
			}
			if row.Goodput < olCapacityGood*float64(rate) {
				return nil // past capacity
			}
			_ = ctxsleep.Sleep(ctx, time.Second)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	// Phase 2: a fresh archiver (no backlog from the ramp) at Factor x the peak.
	rate := int(math.Round(o.Factor * run.Peak))
	if rate <= 0 {
		return fail(fmt.Errorf("the ramp found no capacity (peak goodput 0)"))
	}
	err = r.withOverloadArchiver(ctx, o, run, endpoint, keys, mode, name, "overload", func(url string, pid int) error {
		run.Over = r.attack(ctx, s, name, acked, gen, url, pid, rate, o.Duration)
		row := run.Over
		r.logf("%s at %d/s (%.1fx peak %.0f/s): %.0f ok/s, %d shed, %d errors, p99 %s p99.9 %s max %s, %d later than 1s (sent %s to %s into the rate)",
			name, rate, o.Factor, run.Peak, row.Goodput, row.Shed, row.Errors, fmtDur(row.P99), fmtDur(row.P999), fmtDur(row.Max),
			row.Late, fmtDur(row.LateFrom), fmtDur(row.LateTo))
		return ctx.Err()
	})
	if err != nil {
		return fail(err)
	}
	if run.Acked, run.Found, run.Missing, err = r.readBack(ctx, name, acked); err != nil {
		return fail(err)
	}
	return run
}

// withOverloadArchiver starts a store-mode archiver against the slow store, runs fn and stops it
// gracefully (every Put it started finishes or fails before the read-back).
func (r *runner) withOverloadArchiver(ctx context.Context, o OverloadOptions, run *OverloadRun, endpoint, keys, mode, name, phase string, fn func(url string, pid int) error) error {
	addr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--listen", addr, "--ack", "store", "--keys", keys, "--max-queue-delay", mode,
		"--store", "s3://" + bucket + "/" + r.olPrefix(name), "--s3-endpoint", endpoint,
		"--gzip=false", "--log-level", "warn"}
	args = append(args, o.ExtraArgs...)
	run.Command = "archiver " + strings.Join(args, " ")
	logPath := filepath.Join(r.dir, name+"-"+phase+".log")
	run.LogPaths = append(run.LogPaths, logPath)
	r.logf("%s %s: starting %s", name, phase, run.Command)
	p, err := proc.Launch(ctx, proc.Spec{Name: name, Path: r.archBin, Args: args, Env: r.vgw.Env(), Log: logPath,
		Ready: readyz(addr), StartTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer func() { _ = p.Kill() }()
	if err := fn("http://"+addr+"/callback", p.PID()); err != nil {
		return err
	}
	_, err = terminate(ctx, p, 2*time.Minute)
	return err
}

// OverloadChecks are the checks of a run: every mode ran and lost nothing (hard), and the goal at
// Factor x capacity for each (a baseline row for the mode without overload control).
func OverloadChecks(res *OverloadResults) []Check {
	var checks []Check
	for _, run := range res.Runs {
		n := "max-queue-delay " + run.Mode
		checks = append(checks, Check{Name: n + " ran", Value: orOK(run.Err), Target: "no error", Pass: run.Err == "", Hard: true})
		if run.Err != "" {
			continue
		}
		checks = append(checks, Check{Name: n + ": every 200 read back", Value: fmt.Sprintf("%d of %d (%d missing)", run.Found, run.Acked, run.Missing),
			Target: "0 missing", Pass: run.Missing == 0, Hard: true})
		c := Check{Name: fmt.Sprintf("%s: at %gx capacity", n, res.Options.Factor),
			Target: fmt.Sprintf(">= %.0f%% of peak goodput, every answer <= %s", olOverloadGood*100, olAnswerBound)}
		if o := run.Over; o != nil {
			c.Value = fmt.Sprintf("peak %.0f/s; at %d/s: %.0f/s (%.0f%%), max %s, %d later than 1s, %d unanswered",
				run.Peak, o.Offered, o.Goodput, 100*safeDiv(o.Goodput, run.Peak), fmtDur(o.Max), o.Late, o.Errors)
			c.Pass = o.Goodput >= olOverloadGood*run.Peak && o.Max <= olAnswerBound && o.Errors == 0
		}
		// Without overload control the goal is not expected: that run is the comparison.
		c.Baseline = run.Mode == "off" || run.Mode == "0"
		if c.Baseline {
			c.Target = "none (no overload control: the comparison)"
		}
		checks = append(checks, c)
	}
	return checks
}

// WriteOverloadMarkdown prints every mode's ramp and overload rows as one table, then the checks.
func WriteOverloadMarkdown(w io.Writer, res *OverloadResults, checks []Check) {
	o := res.Options
	fmt.Fprintf(w, "## Overload benchmark, %s\n\n", res.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "%s; load average at the start %s. Store mode, VersityGW behind a slow store (%s per S3 request, %s/s upload link); "+
		"ramp %s per rate, then %gx the peak goodput for %s on a fresh archiver; latency from each request's intended send time.\n\n",
		res.Machine, res.Load, o.Latency, fmtBytes(o.BytesPerSec), o.RampDuration, o.Factor, o.Duration)
	fmt.Fprintln(w, "| --max-queue-delay | phase | offered/s | 200/s within 1 s | of peak | 503 | no answer | p50 | p99 | p99.9 | max | > 1 s | acked, missing |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	line := func(run *OverloadRun, phase string, row *RateResult, lost string) {
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %.0f%% | %d | %d | %s | %s | %s | %s | %d | %s |\n",
			run.Mode, phase, row.Offered, row.Goodput, 100*safeDiv(row.Goodput, run.Peak), row.Shed, row.Errors,
			fmtDur(row.P50), fmtDur(row.P99), fmtDur(row.P999), fmtDur(row.Max), row.Late, lost)
	}
	for _, run := range res.Runs {
		if run.Err != "" && len(run.Ramp) == 0 {
			fmt.Fprintf(w, "| %s | | | | | | | | | | | | error: %s |\n", run.Mode, firstLine(run.Err))
			continue
		}
		for _, row := range run.Ramp {
			line(run, "ramp", row, "")
		}
		if run.Over != nil {
			line(run, fmt.Sprintf("**%gx peak**", o.Factor), run.Over, fmt.Sprintf("%d, **%d**", run.Acked, run.Missing))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| check | value | goal | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range checks {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, c.Value, c.Target, c.verdict())
	}
}
