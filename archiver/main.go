// Command archiver receives Huawei Cloud Live publish callbacks and archives them as
// day-partitioned JSON Lines objects in S3 (or a local directory), and reads the archive back.
//
//	archiver serve  [flags]   receive callbacks (see archiver serve -h)
//	archiver events [flags]   print archived events as JSON Lines (see archiver events -h)
//	archiver sessions [flags] list push sessions: who streamed what, when (see archiver sessions -h)
//	archiver verify [flags]   prove a day range complete and unaltered (see archiver verify -h)
//	archiver compact [flags]  merge a day's objects of every replica (see archiver compact -h)
//	archiver drain [flags]    upload a spool directory without serving (see archiver drain -h)
//	archiver replay [flags]   re-send archived events or dead letters to a receiver (see archiver replay -h)
//	archiver report [flags]   write a self-contained HTML report of the sessions (see archiver report -h)
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	_ "time/tzdata" // --partition-tz works on hosts without a zoneinfo database

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/replay"
	"github.com/livehook/terraform-provider-livehook/archiver/report"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

const usage = `usage: archiver <command> [flags]

Commands:
  serve    receive publish callbacks on POST /callback and archive them (S3 or ./archive)
  events   read archived events back as JSON Lines
  sessions list push sessions (who streamed what, when) from the archive
  verify   check a day range against the signed digests (archiver serve --digest-key)
  compact  merge a day's objects of every replica into few, each callback once
  drain    upload what a spool directory holds to the store, without serving (dead or scaled-down node)
  replay   re-send archived events (or the relay's dead letters) to a receiver
  report   write one self-contained HTML page of the sessions for auditors
  version  print the version (stamped from the release tag)

Run "archiver <command> -h" for the flags of a command.
`

// version is stamped at build time from the release tag (GoReleaser, make build):
// go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		server.Version = version
		return server.Run(ctx, args[1:], stdout, stderr)
	case "events":
		return readback.Run(ctx, args[1:], stdout, stderr)
	case "sessions":
		return sessions.Run(ctx, args[1:], stdout, stderr)
	case "verify":
		return verify.Run(ctx, args[1:], stdout, stderr)
	case "compact":
		return compact.Run(ctx, args[1:], stdout, stderr)
	case "drain":
		return server.Drain(ctx, args[1:], stdout, stderr)
	case "replay":
		return replay.Run(ctx, args[1:], stdout, stderr)
	case "report":
		report.Version = version
		return report.Run(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "archiver", version)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "archiver: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
