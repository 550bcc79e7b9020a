// Command archiver-openloop is the open-loop benchmark (make bench-openloop): fixed offered rates of
// distinct signed callbacks (the vegeta library), latency from each request's intended send time,
// the server's CPU per 1,000 callbacks and RSS from /proc, for bare net/http and the archiver in
// both ack modes, in one run, printed as one Markdown table (docs/performance.md keeps one).
//
//	archiver-openloop [--rates 1000,5000,10000,20000,40000] [--duration 5s] [--targets bare,spool,store]
//	                  [--out openloop-results.json] [--no-fail] [-- EXTRA-SERVE-FLAGS...]
//
// Exit status: 0 when every check passes, 1 when one fails (with --no-fail, only lost data and
// targets that did not run count), 2 on bad usage.
package main

import (
	"context"
	"encoding/json"
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
	fs.StringVar(&o.WorkDir, "workdir", "", "keep spools, logs and S3 data here (default: a temporary directory, removed)")
	fs.StringVar(&o.ProfileDir, "profile", "", "profile the archiver: run it in-process (same code as the binary) and write <target>.cpu.prof and <target>.allocs.prof here")
	out := fs.String("out", "openloop-results.json", "write the results as JSON here (\"\" = don't)")
	noFail := fs.Bool("no-fail", false, "exit 0 when only speed targets are missed (lost data still exits 1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.ExtraArgs = fs.Args()
	o.Rates = nil
	for _, v := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "archiver-openloop: --rates %q: want positive integers like 1000,5000\n", *rates)
			return 2
		}
		o.Rates = append(o.Rates, n)
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
	if res != nil {
		checks := bench.OpenLoopChecks(res)
		bench.WriteOpenLoopMarkdown(stdout, res, checks)
		if *out != "" {
			if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
				if werr := os.WriteFile(*out, append(b, '\n'), 0o644); werr != nil {
					fmt.Fprintf(stderr, "archiver-openloop: writing %s: %v\n", *out, werr)
				}
			}
		}
		if err == nil && bench.Failed(checks, *noFail) {
			fmt.Fprintln(stderr, "archiver-openloop: FAIL (see the checks above)")
			return 1
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver-openloop: %v\n", err)
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
