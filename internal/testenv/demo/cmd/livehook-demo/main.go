// Command livehook-demo runs livehook end to end on this machine (`make demo`): it builds the
// provider, the archiver and the emulator, starts VersityGW, the archiver and the emulator
// on free 127.0.0.1 ports, applies examples/demo with the real terraform, drives a few
// streams, shows the archive, destroys, stops everything and exits 0 only if every delivered
// event is in the archive exactly once.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/demo"
)

func main() {
	os.Exit(run())
}

func run() int {
	var o demo.Options
	flag.StringVar(&o.WorkDir, "workdir", "", "keep logs, spool, S3 data and terraform state in this directory (default: a temporary directory, removed after a successful run)")
	flag.StringVar(&o.Domain, "domain", demo.DefaultDomain, "push domain of the demo")
	flag.IntVar(&o.Streams, "streams", 3, "push sessions to drive (each sends PUBLISH and PUBLISH_DONE)")
	flag.BoolVar(&o.KeepRunning, "keep-running", false, "after the check, leave everything running until Ctrl-C, then destroy and stop")
	flag.Parse()
	o.Out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the demo at once
	}()

	res, err := demo.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nlivehook demo FAILED after %.1fs: %v\n", res.Elapsed.Seconds(), err)
		if res.WorkDir != "" {
			fmt.Fprintf(os.Stderr, "logs: %s/logs/\n", res.WorkDir)
		}
		return 1
	}
	fmt.Printf("\nlivehook demo OK in %.1fs (build %.1fs, flow %.1fs): every delivered event is in the archive exactly once\n",
		res.Elapsed.Seconds(), res.Build.Seconds(), (res.Elapsed - res.Build).Seconds())
	return 0
}
