// Command archiver-bench measures the archiver against its ceiling (a bare net/http handler) and
// its peers (fsync per request, one PutObject per event) on this machine, in one run, and checks
// the figures against the targets in docs/performance.md. `make bench-archiver` runs it with the
// defaults.
//
//	archiver-bench [--duration 15s] [--warmup 3s] [--conns 32]
//	               [--targets bare,fsync,naive,spool,store,outage] [--outage 30s]
//	               [--out bench-results.json] [--no-fail]
//
// Exit status: 0 when every check passes, 1 when one fails (with --no-fail, only correctness
// failures count: data lost or duplicated, errors in the outage run, a target that did not run),
// 2 on bad usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/livehook/terraform-provider-livehook/archiver/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Hidden subcommand: the bench re-execs itself to run a peer target in its own process.
	if len(args) > 0 && args[0] == "target" {
		return bench.RunTarget(args[1:], stderr)
	}
	// The relay's bench (make bench-forward): forward lag and the ack cost of destinations.
	if len(args) > 0 && args[0] == "forward" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return bench.RunForwardCmd(ctx, args[1:], stdout, stderr)
	}
	d := bench.Defaults()
	fs := flag.NewFlagSet("archiver-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := d
	fs.DurationVar(&o.Duration, "duration", d.Duration, "measured window per target")
	fs.DurationVar(&o.Warmup, "warmup", d.Warmup, "warm-up per target (not counted in req/s and latency, counted in read-back)")
	fs.IntVar(&o.Conns, "conns", d.Conns, "concurrent keep-alive connections")
	targets := fs.String("targets", strings.Join(d.Targets, ","), "comma-separated targets to run: "+strings.Join(bench.AllTargets, ","))
	fs.DurationVar(&o.Outage, "outage", d.Outage, "how long the S3 server is down in the outage run")
	fs.DurationVar(&o.OutageBefore, "outage-before", d.OutageBefore, "outage run: load before the S3 server stops")
	fs.DurationVar(&o.OutageAfter, "outage-after", d.OutageAfter, "outage run: load after the S3 server is back")
	fs.DurationVar(&o.StoreFlushAlt, "store-flush-alt", d.StoreFlushAlt, "run store mode a second time with this --flush-interval (0 = skip)")
	fs.DurationVar(&o.Timeout, "timeout", d.Timeout, "per-request timeout (a slower answer counts as an error)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", d.DrainTimeout, "how long a target may take to exit after SIGTERM")
	fs.StringVar(&o.ArchiverBin, "archiver-bin", "", "use this archiver binary instead of building ./archiver")
	fs.StringVar(&o.WorkDir, "workdir", "", "keep spools, logs and S3 data here (default: a temporary directory, removed)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the temporary work directory (its path is logged)")
	out := fs.String("out", "bench-results.json", "write the results as JSON here (\"\" = don't)")
	fs.StringVar(&o.ProfileDir, "profile", "", "profile the archiver: run it in-process (same code as the binary) and write <target>.cpu.prof and <target>.allocs.prof here")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator (this process) here")
	noFail := fs.Bool("no-fail", false, "exit 0 when only speed/size targets are missed (correctness failures still exit 1)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %v\n", fs.Args())
		return 2
	}
	o.Targets = nil
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			o.Targets = append(o.Targets, t)
		}
	}
	if len(o.Targets) == 0 {
		fmt.Fprintln(stderr, "--targets is empty")
		return 2
	}
	o.Log = stderr

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "archiver-bench: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "archiver-bench: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	res, err := bench.Run(ctx, o)
	if res != nil {
		bench.WriteMarkdown(stdout, res)
		if *out != "" {
			if werr := bench.WriteJSON(*out, res); werr != nil {
				fmt.Fprintf(stderr, "archiver-bench: writing %s: %v\n", *out, werr)
			} else {
				fmt.Fprintf(stderr, "archiver-bench: results written to %s\n", *out)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver-bench: %v\n", err)
		return 1
	}
	if bench.Failed(res.Checks, *noFail) {
		fmt.Fprintln(stderr, "archiver-bench: FAIL (see the checks above)")
		return 1
	}
	return 0
}
