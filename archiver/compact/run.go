package compact

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Exit codes of Run.
const (
	ExitOK      = 0
	ExitRuntime = 1
	ExitUsage   = 2
)

// CrashEnv names a step after which Run exits at once with code 3, as a crash would (for the
// crash-safety tests; see Options.Step for the step names).
const CrashEnv = "LIVEHOOK_COMPACT_EXIT_AFTER"

const usage = `usage: archiver compact --day YYYY-MM-DD [--store s3://BUCKET/PREFIX | --store file:///DIR]
                       [--s3-endpoint URL] [--s3-region R] [--digest-key FILE] [--delete-originals]
                       [--flush-bytes SIZE] [--archive-id ID]

Merges every object of one partition day (all archiver replicas' objects and earlier compactions)
into the fewest objects of at most --flush-bytes of JSON Lines, named
dt=DAY/compacted-<hash>-<part>-of-<parts>.jsonl.gz, sorted by received_at, each callback once
(copies that differ only in the archive field collapse to the earliest). With --digest-key it signs
a compaction digest for what it wrote and removed, so archiver verify passes on the compacted day.
--delete-originals removes the merged objects after the compacted ones were read back and checked.
Running it again changes nothing; after a crash, run it again.

flags:
`

// Run implements `archiver compact`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("compact", usage, stderr)
	var (
		so      storage.Options
		o       = Options{FlushBytes: 64 << 20, Gzip: true}
		keyFile string
		flush   = server.FormatSize(o.FlushBytes)
	)
	cli.StoreFlags(fs, &so)
	fs.StringVar(&o.Day, "day", "", "partition day to compact: "+cli.DayWords+" (required)")
	fs.StringVar(&keyFile, "digest-key", "", "Ed25519 private key (PEM PKCS#8) to sign the compaction digest (without it the compacted day does not verify)")
	fs.StringVar(&o.ArchiveID, "archive-id", "", "the archive the digests are signed for: archiver serve's --archive-id (default: the store, s3://BUCKET/PREFIX or file:///DIR)")
	fs.BoolVar(&o.DeleteOriginals, "delete-originals", false, "delete the merged objects once the compacted objects are stored and checked")
	fs.StringVar(&flush, "flush-bytes", flush, "largest compacted object, in bytes of uncompressed JSON Lines (e.g. 64MiB)")
	fs.BoolVar(&o.Gzip, "gzip", o.Gzip, "gzip the compacted objects (.jsonl.gz)")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	if o.Day == "" {
		return usageErr("missing --day: give the partition day to compact as YYYY-MM-DD (or yesterday)")
	}
	o.Day = cli.Day(o.Day, time.Now())
	if _, err := (readback.Query{From: o.Day}).Days(); err != nil {
		return usageErr("%v", strings.Replace(err.Error(), "--from", "--day", 1))
	}
	n, err := server.ParseSize(flush)
	if err != nil || n <= 0 {
		return usageErr("invalid --flush-bytes %q: want a positive size like 64MiB", flush)
	}
	o.FlushBytes = n
	if n < spool.DefaultFlushBytes/64 {
		fmt.Fprintf(stderr, "archiver compact: note: --flush-bytes %s is small; the day will have many objects\n", flush)
	}
	if keyFile != "" {
		if o.Key, err = digest.LoadPrivateKey(keyFile); err != nil {
			return usageErr("%v", err)
		}
	} else if o.DeleteOriginals {
		return usageErr("--delete-originals needs --digest-key: without a signed record of the removal, archiver verify would report the originals as missing")
	}
	store, err := storage.Open(ctx, so)
	if err != nil {
		return usageErr("%v", err)
	}
	if _, err := store.List(ctx, digest.Prefix+"0000/"); err != nil { // not Ping: it would create a mistyped directory
		fmt.Fprintf(stderr, "archiver compact: %v\n", err)
		return ExitUsage
	}
	st, ok := store.(Store)
	if !ok {
		fmt.Fprintf(stderr, "archiver compact: %s cannot delete objects\n", store)
		return ExitUsage
	}
	o.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	if at := os.Getenv(CrashEnv); at != "" {
		o.Step = func(step string) error {
			if step == at {
				os.Exit(3)
			}
			return nil
		}
	}
	res, err := Compact(ctx, st, o)
	if err != nil {
		fmt.Fprintf(stderr, "archiver compact: %v\n", err)
		return ExitRuntime
	}
	switch {
	case res.Unchanged && len(res.DigestKeys) > 0:
		fmt.Fprintf(stdout, "day %s: already compacted (%d objects, %d records); signed the confirmation that the originals are deleted\n", o.Day, res.Inputs, res.Records)
	case res.Unchanged:
		fmt.Fprintf(stdout, "day %s: already compacted (%d objects, %d records); nothing changed\n", o.Day, res.Inputs, res.Records)
	default:
		fmt.Fprintf(stdout, "day %s: %d objects with %d records -> %d records (%d redelivered copies collapsed); wrote %d objects, deleted %d originals, %d digests\n",
			o.Day, res.Inputs, res.Records, res.Kept, res.Collapsed, len(res.Written), len(res.Deleted), len(res.DigestKeys))
	}
	return ExitOK
}
