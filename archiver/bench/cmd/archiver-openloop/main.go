// Command archiver-openloop is the open-loop benchmark (make bench-openloop): fixed offered rates of
// distinct signed callbacks (the vegeta library), latency from each request's intended send time,
// the server's CPU per 1,000 callbacks and RSS from /proc, for bare net/http and the archiver in
// both ack modes, in one run, printed as one Markdown table (docs/performance.md keeps one).
//
//	archiver-openloop [--rates 1000,5000,10000,20000,40000] [--duration 5s] [--targets bare,spool,store]
//	                  [--out openloop-results.json] [--no-fail] [-- EXTRA-SERVE-FLAGS...]
//
//	archiver-openloop overload [--modes auto,off] [--s3-latency 30ms] [--s3-bandwidth 1048576] [--duration 12s] ...
//
// The overload scenario (make bench-overload) makes store mode's durability path the bottleneck
// (VersityGW behind a slow store), finds its capacity and offers twice that, with admission
// control on and off. Exit status: as below.
//
// Exit status: 0 when every check passes, 1 when one fails (with --no-fail, only lost data and
// targets that did not run count), 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/livehook/terraform-provider-livehook/archiver/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "target" { // the bench re-execs itself to run the bare target
		return bench.RunTarget(args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "overload" {
		return runOverload(args[1:], stdout, stderr)
	}
	d := bench.DefaultOpenLoop()
	o := d
	fs := flag.NewFlagSet("archiver-openloop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rates := fs.String("rates", joinInts(d.Rates), "comma-separated offered rates, callbacks per second")
	fs.DurationVar(&o.Duration, "duration", d.Duration, "how long each rate is offered")
	fs.DurationVar(&o.Warmup, "warmup", d.Warmup, "warm-up per target at the first rate (not measured)")
	fs.DurationVar(&o.Idle, "idle", d.Idle, "idle window per target whose CPU is measured")
	fs.DurationVar(&o.Timeout, "timeout", d.Timeout, "the sender's timeout: a later answer is an error")
	fs.IntVar(&o.Conns, "conns", d.Conns, "most connections the sender opens (0: no cap); requests waiting for one count from their intended send time")
	targets := fs.String("targets", strings.Join(d.Targets, ","), "comma-separated targets: "+strings.Join(bench.OpenLoopTargets, ","))
	fs.StringVar(&o.ArchiverBin, "archiver-bin", "", "use this archiver binary instead of building ./archiver")
	fs.StringVar(&o.Arrivals, "arrivals", "constant", "constant (request n due at n/rate) or poisson (exponential gaps of the same mean rate: independent senders)")
	fs.DurationVar(&o.FloorWindow, "floor-window", d.FloorWindow, "target floor (a minimal group commit: append, fdatasync, answer): wait this long after the first waiting request before each commit")
	fs.StringVar(&o.WorkDir, "workdir", "", "keep spools, logs and S3 data here (default: a temporary directory, removed)")
	fs.StringVar(&o.ProfileDir, "profile", "", "profile the archiver: run it in-process (same code as the binary) and write <target>.cpu.prof and <target>.allocs.prof here")
	out := fs.String("out", "openloop-results.json", "write the results as JSON here (\"\" = don't)")
	noFail := fs.Bool("no-fail", false, "exit 0 when only speed targets are missed (lost data still exits 1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.ExtraArgs = fs.Args()
	var err error
	if o.Rates, err = bench.ParsePositiveInts(*rates); err != nil {
		fmt.Fprintf(stderr, "archiver-openloop: --rates %q: want positive integers like 1000,5000\n", *rates)
		return 2
	}
	o.Targets = nil
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.Targets = append(o.Targets, t)
		}
	}
	o.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunOpenLoop(ctx, o)
	return finish(stdout, stderr, "archiver-openloop", res, err, *out, *noFail, bench.OpenLoopChecks, bench.WriteOpenLoopMarkdown)
}

// finish prints a run's table and checks (res may be nil after an error), writes res as JSON to out
// ("" = don't) and returns the exit status: 1 on err or, without err, a failed check (see
// bench.Failed). cmd prefixes the FAIL and error messages.
func finish[R any](stdout, stderr io.Writer, cmd string, res *R, err error, out string, noFail bool,
	checksOf func(*R) []bench.Check, write func(io.Writer, *R, []bench.Check),
) int {
	if res != nil {
		checks := checksOf(res)
		write(stdout, res, checks)
		if out != "" {
			if werr := bench.WriteJSON(out, res); werr != nil {
				fmt.Fprintf(stderr, "archiver-openloop: writing %s: %v\n", out, werr)
			}
		}
		if err == nil && bench.Failed(checks, noFail) {
			fmt.Fprintf(stderr, "%s: FAIL (see the checks above)\n", cmd)
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func runOverload(args []string, stdout, stderr io.Writer) int {
	d := bench.DefaultOverload()
	o := d
	fs := flag.NewFlagSet("archiver-openloop overload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modes := fs.String("modes", strings.Join(d.Modes, ","), "comma-separated --max-queue-delay values, one archiver each (auto, off or a duration)")
	ramp := fs.String("ramp", joinInts(d.Ramp), "comma-separated offered rates of the capacity ramp, ascending; it stops at the first rate goodput does not follow")
	fs.DurationVar(&o.RampDuration, "ramp-duration", d.RampDuration, "how long each ramp rate is offered")
	fs.Float64Var(&o.Factor, "factor", d.Factor, "the overload: this times the ramp's peak goodput")
	fs.DurationVar(&o.Duration, "duration", d.Duration, "how long the overload is offered")
	fs.DurationVar(&o.Latency, "s3-latency", d.Latency, "slow store: added to every S3 request")
	fs.Int64Var(&o.BytesPerSec, "s3-bandwidth", d.BytesPerSec, "slow store: bytes per second of request bodies, shared by all requests (0: no limit)")
	fs.DurationVar(&o.Timeout, "timeout", d.Timeout, "the sender's timeout: a later answer is an error")
	fs.IntVar(&o.Conns, "conns", d.Conns, "most connections the sender opens (0: no cap)")
	fs.StringVar(&o.ArchiverBin, "archiver-bin", "", "use this archiver binary instead of building ./archiver")
	fs.StringVar(&o.WorkDir, "workdir", "", "keep logs and S3 data here (default: a temporary directory, removed)")
	out := fs.String("out", "overload-results.json", "write the results as JSON here (\"\" = don't)")
	noFail := fs.Bool("no-fail", false, "exit 0 when only the overload goal is missed (lost data still exits 1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.ExtraArgs = fs.Args()
	var err error
	if o.Ramp, err = bench.ParsePositiveInts(*ramp); err != nil {
		fmt.Fprintf(stderr, "archiver-openloop overload: --ramp %q: want positive integers like 500,1000\n", *ramp)
		return 2
	}
	o.Modes = nil
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Modes = append(o.Modes, m)
		}
	}
	if len(o.Modes) == 0 || len(o.Modes) > 3 {
		fmt.Fprintf(stderr, "archiver-openloop overload: --modes %q: want one to three --max-queue-delay values like auto,off\n", *modes)
		return 2
	}
	if o.Factor <= 1 || o.Duration <= 0 || o.RampDuration <= 0 || o.Latency < 0 || o.BytesPerSec < 0 {
		fmt.Fprintln(stderr, "archiver-openloop overload: --factor must be above 1, --duration and --ramp-duration positive, --s3-latency and --s3-bandwidth not negative")
		return 2
	}
	o.Log = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunOverload(ctx, o)
	return finish(stdout, stderr, "archiver-openloop overload", res, err, *out, *noFail, bench.OverloadChecks, bench.WriteOverloadMarkdown)
}
