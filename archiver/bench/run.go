package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
	"github.com/minio/minio-go/v7"
)

// Options configure a benchmark run. Zero values take the defaults (see Defaults).
type Options struct {
	Duration      time.Duration // measured window per target
	Warmup        time.Duration // per target, before the window
	Conns         int           // concurrent keep-alive connections
	Targets       []string      // subset of AllTargets, run in AllTargets order
	Outage        time.Duration // S3 server down time in the outage run
	OutageBefore  time.Duration // load before the outage
	OutageAfter   time.Duration // load after the restart
	StoreFlushAlt time.Duration // a second store-mode run with this --flush-interval; 0 = skip
	Timeout       time.Duration // per request
	DrainTimeout  time.Duration // SIGTERM to exit
	ArchiverBin   string        // a prebuilt archiver; "" = go build it
	WorkDir       string        // "" = a temporary directory, removed afterwards unless Keep
	Keep          bool
	// ProfileDir, when set, runs the archiver targets inside the bench binary (server.Run, the
	// code the archiver binary runs) with CPU and allocation profiles written here per target.
	ProfileDir string
	Log        io.Writer `json:"-"` // progress; nil = os.Stderr
}

// AllTargets in the order they run. "store" runs at the default --flush-interval and, when
// StoreFlushAlt is set, once more with it.
var AllTargets = []string{"bare", "fsync", "naive", "spool", "store", "outage"}

// Defaults returns the standard run: 32 connections, 3 s warm-up, 15 s window, a 60 s outage
// between 10 s of load on each side.
func Defaults() Options {
	return Options{
		Duration:      15 * time.Second,
		Warmup:        3 * time.Second,
		Conns:         32,
		Targets:       slices.Clone(AllTargets),
		Outage:        60 * time.Second,
		OutageBefore:  10 * time.Second,
		OutageAfter:   10 * time.Second,
		StoreFlushAlt: time.Second,
		Timeout:       30 * time.Second,
		DrainTimeout:  2 * time.Minute,
	}
}

// TargetResult is one row of the table.
type TargetResult struct {
	Name          string         `json:"name"`
	Command       string         `json:"command"`
	Load          *LoadResult    `json:"load,omitempty"`
	ReadBack      *ReadBack      `json:"read_back,omitempty"`
	PeakRSS       int64          `json:"peak_rss_bytes"`        // VmHWM just before SIGTERM
	MaxSampledRSS int64          `json:"max_sampled_rss_bytes"` // max VmRSS sampled every 200 ms
	Drain         time.Duration  `json:"drain_ns"`              // SIGTERM to exit
	ExitCode      int            `json:"exit_code"`
	FlushInterval time.Duration  `json:"flush_interval_ns,omitempty"`
	Outage        *OutageFigures `json:"outage,omitempty"`
	Batching      *Batching      `json:"batching,omitempty"` // archiver targets: from its /metrics
	Err           string         `json:"error,omitempty"`
	LogPath       string         `json:"log,omitempty"`
}

// Archiver reports whether the row is one of the archiver's.
func (t *TargetResult) Archiver() bool {
	return t.Name == "spool" || strings.HasPrefix(t.Name, "store") || t.Name == "outage"
}

// PeakRSSMax is the larger of the two RSS peaks.
func (t *TargetResult) PeakRSSMax() int64 { return max(t.PeakRSS, t.MaxSampledRSS) }

// OutageFigures split the outage run into its three phases.
type OutageFigures struct {
	Before, Down, After       time.Duration
	StoppedAfter              time.Duration `json:"stopped_after_ns"`   // load start to S3 stopped
	RestartedAfter            time.Duration `json:"restarted_after_ns"` // load start to S3 ready again
	OKBefore, OKDown, OKAfter int64
	Err                       string `json:"error,omitempty"`
}

// Results is the whole run, as written to --out.
type Results struct {
	Started   time.Time       `json:"started"`
	Elapsed   time.Duration   `json:"elapsed_ns"`
	Machine   string          `json:"machine"`
	Options   Options         `json:"options"`
	Tag       string          `json:"run_tag"`
	Endpoint  string          `json:"s3_endpoint,omitempty"`
	Targets   []*TargetResult `json:"targets"`
	Checks    []Check         `json:"checks"`
	BuildTime time.Duration   `json:"archiver_build_ns,omitempty"`
}

// Target returns the named row or nil.
func (r *Results) Target(name string) *TargetResult {
	for _, t := range r.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

const bucket = "bench"

type runner struct {
	opts    Options
	log     io.Writer
	dir     string
	self    string
	tag     string
	pubTS   int64
	archBin string
	vgw     *versitygw.Server
	mc      *minio.Client
}

// Run executes the benchmark and returns the results (with checks evaluated). A non-nil error
// means the harness itself could not run (no results worth printing).
func Run(ctx context.Context, opts Options) (*Results, error) {
	d := Defaults()
	if opts.Duration <= 0 {
		opts.Duration = d.Duration
	}
	if opts.Warmup < 0 {
		opts.Warmup = 0
	}
	if opts.Conns <= 0 {
		opts.Conns = d.Conns
	}
	if len(opts.Targets) == 0 {
		opts.Targets = d.Targets
	}
	for _, t := range opts.Targets {
		if !slices.Contains(AllTargets, t) {
			return nil, fmt.Errorf("unknown target %q (want some of %s)", t, strings.Join(AllTargets, ","))
		}
	}
	if opts.Outage <= 0 {
		opts.Outage = d.Outage
	}
	if opts.OutageBefore <= 0 {
		opts.OutageBefore = d.OutageBefore
	}
	if opts.OutageAfter <= 0 {
		opts.OutageAfter = d.OutageAfter
	}
	if opts.Timeout <= 0 {
		opts.Timeout = d.Timeout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = d.DrainTimeout
	}
	r := newRunner(opts.Log, opts)
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the bench binary to re-exec targets: %w", err)
	}
	r.self = self

	r.dir = opts.WorkDir
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "archiver-bench-*"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	if opts.WorkDir == "" && !opts.Keep {
		defer os.RemoveAll(r.dir)
	} else {
		r.logf("work directory (logs, spools, S3 data) kept in %s", r.dir)
	}

	res := &Results{
		Started: time.Now(),
		Machine: machineString(),
		Options: opts,
		Tag:     r.tag,
	}
	defer func() { res.Elapsed = time.Since(res.Started) }()
	want := func(names ...string) bool {
		for _, n := range names {
			if slices.Contains(opts.Targets, n) {
				return true
			}
		}
		return false
	}

	if opts.ProfileDir != "" {
		if err := os.MkdirAll(opts.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	if want("spool", "store", "outage") && opts.ProfileDir == "" {
		t0 := time.Now()
		if err := r.buildArchiver(ctx); err != nil {
			return nil, err
		}
		res.BuildTime = time.Since(t0)
	}
	if want("naive", "spool", "store", "outage") {
		r.logf("starting VersityGW in %s", r.dir)
		stop, err := r.startS3(ctx)
		defer func() {
			if err := stop(); err != nil {
				r.logf("stopping VersityGW: %v", err)
			}
		}()
		if err != nil {
			return nil, err
		}
		res.Endpoint = r.vgw.Endpoint
	}

	for _, name := range AllTargets {
		if !want(name) {
			continue
		}
		switch name {
		case "store":
			res.Targets = append(res.Targets, r.runTarget(ctx, "store", 0))
			if opts.StoreFlushAlt > 0 {
				res.Targets = append(res.Targets, r.runTarget(ctx, "store-flush-"+opts.StoreFlushAlt.String(), opts.StoreFlushAlt))
			}
		default:
			res.Targets = append(res.Targets, r.runTarget(ctx, name, 0))
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("interrupted: %w", err)
		}
	}
	res.Checks = evaluate(res)
	return res, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "bench: "+format+"\n", args...)
}

// machineString describes this machine and Go for a results header.
func machineString() string {
	return fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// newRunner is a runner for o with a fresh run tag and publish timestamp, logging to log (nil:
// os.Stderr).
func newRunner(log io.Writer, o Options) *runner {
	r := &runner{opts: o, log: log, tag: newRunTag(), pubTS: time.Now().Unix()}
	if r.log == nil {
		r.log = os.Stderr
	}
	return r
}

// startS3 starts VersityGW in r.dir, sets r.vgw and r.mc and creates the bucket. stop is never
// nil: it stops the server if it started (and returns nil if it did not), so the caller defers it
// before looking at err.
func (r *runner) startS3(ctx context.Context) (stop func() error, err error) {
	vgw, err := versitygw.Start(ctx, filepath.Join(r.dir, "s3"))
	if err != nil {
		return func() error { return nil }, fmt.Errorf("starting the S3 server: %w", err)
	}
	r.vgw = vgw
	if r.mc, err = vgw.Client(); err != nil {
		return vgw.Stop, err
	}
	if err := vgw.CreateBucket(ctx, bucket); err != nil {
		return vgw.Stop, err
	}
	return vgw.Stop, nil
}

// writeKeys writes the open-loop senders' keys file (olDomain signed with olKey) into r.dir and
// returns its path.
func (r *runner) writeKeys() (string, error) {
	keys := filepath.Join(r.dir, "keys.json")
	if err := os.WriteFile(keys, []byte(`{"`+olDomain+`": "`+olKey+`"}`), 0o600); err != nil {
		return "", err
	}
	return keys, nil
}

// buildArchiver compiles the archiver once (or takes --archiver-bin as is).
func (r *runner) buildArchiver(ctx context.Context) error {
	if r.opts.ArchiverBin != "" {
		r.archBin = r.opts.ArchiverBin
		return nil
	}
	r.logf("building the archiver")
	root, err := devenv.RepoRoot()
	if err == nil {
		var bins devenv.Binaries
		bins, err = devenv.Build(ctx, root, r.dir, "", "archiver")
		r.archBin = bins.Archiver
	}
	if err != nil {
		return fmt.Errorf("building the archiver: %w (run from inside the repository, e.g. make bench-archiver, or pass --archiver-bin)", err)
	}
	return nil
}

// command returns the program, arguments and extra environment of a target listening on addr.
func (r *runner) command(name, addr string, flush time.Duration) (string, []string, []string) {
	switch name {
	case "bare":
		return r.self, []string{"target", "bare", "--listen", addr}, nil
	case "fsync":
		return r.self, []string{"target", "fsync", "--listen", addr, "--file", filepath.Join(r.dir, "fsync.jsonl")}, nil
	case "naive":
		return r.self, []string{"target", "naive", "--listen", addr, "--s3-endpoint", r.vgw.Endpoint,
			"--bucket", bucket, "--prefix", name}, r.vgw.Env()
	}
	ack := "spool"
	if strings.HasPrefix(name, "store") {
		ack = "store"
	}
	// The load is unsigned, like the comparison targets, which verify nothing: an explicit opt-in.
	args := []string{"serve", "--listen", addr, "--ack", ack, "--allow-unsigned",
		"--store", "s3://" + bucket + "/" + name, "--s3-endpoint", r.vgw.Endpoint,
		"--spool", filepath.Join(r.dir, "spool-"+name)}
	if flush > 0 {
		args = append(args, "--flush-interval", flush.String())
	}
	if name == "outage" {
		// The outage run checks that an outage inside the spool budget costs no error. At full
		// load a minute fills the default 1GiB on a fast disk, after which 503 is the designed
		// back-pressure (covered by the server tests), so the budget here holds the whole outage.
		args = append(args, "--spool-max-bytes", "8GiB")
	}
	if r.opts.ProfileDir != "" {
		pre := []string{"target", "archiver",
			"--cpuprofile", filepath.Join(r.opts.ProfileDir, name+".cpu.prof"),
			"--memprofile", filepath.Join(r.opts.ProfileDir, name+".allocs.prof"), "--"}
		return r.self, append(pre, args[1:]...), r.vgw.Env()
	}
	return r.archBin, args, r.vgw.Env()
}

// runTarget starts one target, loads it, stops it and reads its archive back. Failures are
// recorded in the row (the other targets still run).
func (r *runner) runTarget(ctx context.Context, name string, flush time.Duration) *TargetResult {
	res := &TargetResult{Name: name, FlushInterval: flush, ExitCode: -1}
	fail := func(err error) *TargetResult {
		res.Err = err.Error()
		r.logf("%s: %v", name, err)
		return res
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	bin, args, env := r.command(name, addr, flush)
	res.Command = filepath.Base(bin) + " " + strings.Join(args, " ")
	res.LogPath = filepath.Join(r.dir, name+".log")
	r.logf("%s: starting %s", name, res.Command)
	p, err := proc.Launch(ctx, proc.Spec{
		Name: name, Path: bin, Args: args, Env: env, Log: res.LogPath,
		Ready: readyz(addr), StartTimeout: 30 * time.Second,
	})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = p.Kill() }()
	sampler := sampleRSS(p.PID(), 200*time.Millisecond)
	defer sampler.Stop()

	cfg := LoadConfig{Addr: addr, Path: "/callback", Conns: r.opts.Conns, Warmup: r.opts.Warmup,
		Duration: r.opts.Duration, Timeout: r.opts.Timeout, Tag: r.tag, PublishTS: r.pubTS}
	var outageDone chan struct{}
	if name == "outage" {
		cfg.Warmup = 0
		cfg.Duration = r.opts.OutageBefore + r.opts.Outage + r.opts.OutageAfter
		res.Outage = &OutageFigures{Before: r.opts.OutageBefore, Down: r.opts.Outage, After: r.opts.OutageAfter}
		outageDone = make(chan struct{})
		octx, cancel := context.WithCancel(ctx)
		defer cancel()
		go r.outage(octx, time.Now(), res.Outage, outageDone)
	}
	r.logf("%s: load on %s: %d connections, %s warm-up, %s measured", name, addr, cfg.Conns, cfg.Warmup, cfg.Duration)
	load, err := RunLoad(ctx, cfg)
	if outageDone != nil {
		<-outageDone
		r.splitOutage(res.Outage, load)
	}
	if err != nil {
		return fail(err)
	}
	res.Load = load
	if res.Archiver() {
		if b, err := scrapeBatching(ctx, addr); err != nil {
			r.logf("%s: %v", name, err) // a report detail, not a failure
		} else {
			res.Batching = b
		}
	}
	if _, hwm, err := memStatus(p.PID()); err == nil {
		res.PeakRSS = hwm
	}
	drain, terr := terminate(ctx, p, r.opts.DrainTimeout)
	res.Drain = drain
	res.ExitCode = p.ExitCode()
	res.MaxSampledRSS = sampler.Stop()
	if terr != nil {
		fail(terr)
	} else if res.ExitCode != 0 {
		fail(fmt.Errorf("exited with status %d after SIGTERM\n%s", res.ExitCode, p.LogTail(30)))
	}
	r.logf("%s: %.0f req/s, p50 %s, p99 %s, %d errors, %d answered 200 in all; stopped in %s",
		name, load.ReqPerSec, fmtDur(load.P50), fmtDur(load.P99), load.Errors(), load.AllOK, drain.Round(time.Millisecond))

	var rb ReadBack
	switch name {
	case "bare":
		return res
	case "fsync":
		rb, err = readFile(filepath.Join(r.dir, "fsync.jsonl"), r.tag, load.acked)
	case "naive":
		rb, err = readNaive(ctx, r.mc, bucket, name, r.tag, load.acked)
	default:
		rb, err = readArchive(ctx, r.mc, bucket, name, r.tag, load.acked)
	}
	res.ReadBack = &rb
	if err != nil {
		return fail(fmt.Errorf("reading back: %w", err))
	}
	r.logf("%s: read back %d events (%d unique) in %d objects; %d answered 200; missing %d, duplicates %d",
		name, rb.Lines, rb.UniqueIDs, rb.Objects, rb.Acked, rb.Missing, rb.Duplicates)
	return res
}

// outage stops the S3 server OutageBefore after the load starts and restarts it Outage later.
func (r *runner) outage(ctx context.Context, start time.Time, f *OutageFigures, done chan<- struct{}) {
	defer close(done)
	wait := func(until time.Time) bool { return ctxsleep.Sleep(ctx, time.Until(until)) == nil }
	restart := func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.vgw.Restart(rctx); err != nil {
			f.Err = strings.TrimPrefix(f.Err+"; restarting VersityGW: "+err.Error(), "; ")
		}
		f.RestartedAfter = time.Since(start)
		r.logf("outage: VersityGW back after %s", f.RestartedAfter.Round(time.Millisecond))
	}
	if !wait(start.Add(f.Before)) {
		return
	}
	r.logf("outage: stopping VersityGW for %s", f.Down)
	if err := r.vgw.Stop(); err != nil {
		f.Err = fmt.Sprintf("stopping VersityGW: %v", err)
	}
	f.StoppedAfter = time.Since(start)
	if !wait(start.Add(f.Before + f.Down)) {
		restart() // never leave the S3 server down for the next steps
		return
	}
	restart()
}

// splitOutage sums the per-second 200s into the three phases.
func (r *runner) splitOutage(f *OutageFigures, load *LoadResult) {
	if load == nil {
		return
	}
	for s, n := range load.PerSecondOK {
		at := time.Duration(s) * time.Second
		switch {
		case at < f.Before:
			f.OKBefore += n
		case at < f.Before+f.Down:
			f.OKDown += n
		default:
			f.OKAfter += n
		}
	}
}
