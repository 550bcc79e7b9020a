package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
)

// runProfiledArchiver is the hidden `target archiver` subcommand: `archiver serve` (the same
// server.Run the archiver binary calls) inside this process, with a CPU profile of the whole run
// and a heap profile at exit. The archiver exposes no pprof endpoint; this is how --profile
// profiles it under the benchmark's real load without touching its code.
//
//	archiver-bench target archiver --cpuprofile F [--memprofile F] -- SERVE-ARGS...
func runProfiledArchiver(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("target archiver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cpu := fs.String("cpuprofile", "", "write a CPU profile here")
	mem := fs.String("memprofile", "", "write a heap profile here at exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fmt.Fprintf(stderr, "target archiver: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "target archiver: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	code := server.Run(context.Background(), fs.Args(), stdout, stderr)
	if *mem != "" {
		f, err := os.Create(*mem)
		if err == nil {
			runtime.GC()
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "target archiver: heap profile: %v\n", err)
		}
	}
	return code
}
