package verify

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Exit codes of Run.
const (
	ExitClean    = 0 // nothing to report
	ExitProblems = 1 // problems found
	ExitUsage    = 2 // usage or access error
)

const usage = `usage: archiver verify --from YYYY-MM-DD [--to YYYY-MM-DD] --public-key FILE
                      [--store s3://BUCKET/PREFIX | --store file:///DIR] [--s3-endpoint URL] [--s3-region R]
                      [--format table|jsonl]

Checks that the archive of the days --from..--to is complete and unaltered: every object and
rejected-request sample against the signed digests the archivers wrote (archiver serve
--digest-key), the digests' signatures against --public-key (openssl pkey -in key.pem -pubout), and
that every instance's digest chain is unbroken and covers its time without gaps.

Problems: altered (hash differs), missing (listed, not present), unlisted (present, in no digest),
chain_broken, bad_signature, gap. Exit 0 when there is nothing to report, 1 when there is, 2 on a
usage or access error. A summary line ends the output; progress goes to stderr.

flags:
`

// Run implements `archiver verify`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("verify", usage, stderr)
	var (
		so      storage.Options
		o       Options
		keyFile string
		format  string
		quiet   bool
	)
	cli.StoreFlags(fs, &so)
	fs.StringVar(&o.From, "from", "", "first partition day to verify: "+cli.DayWords+" (required)")
	fs.StringVar(&o.To, "to", "", "last partition day, inclusive: "+cli.DayWords+" (default: --from)")
	fs.StringVar(&keyFile, "public-key", "", "Ed25519 public key (PEM) matching the archivers' --digest-key (required)")
	fs.StringVar(&format, "format", "table", "output: table or jsonl (one JSON object per problem, then a summary object)")
	fs.BoolVar(&quiet, "quiet", false, "no progress on stderr")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	o.From, o.To = cli.Day(o.From, time.Now()), cli.Day(o.To, time.Now())
	if format != "table" && format != "jsonl" {
		return usageErr("invalid --format %q: want table or jsonl", format)
	}
	if _, err := (readback.Query{From: o.From, To: o.To}).Days(); err != nil {
		return usageErr("%v", err)
	}
	if keyFile == "" {
		return usageErr("missing --public-key: the Ed25519 public key of the archivers' --digest-key (openssl pkey -in key.pem -pubout -out pub.pem)")
	}
	pub, err := digest.LoadPublicKey(keyFile)
	if err != nil {
		return usageErr("%v", err)
	}
	o.PublicKey = pub
	store, err := storage.Open(ctx, so)
	if err != nil {
		return usageErr("%v", err)
	}
	// A List, not Ping: the file store's Ping creates a missing directory, and verifying a
	// mistyped path must fail, not pass as empty.
	if _, err := store.List(ctx, digest.Prefix+"0000/"); err != nil {
		fmt.Fprintf(stderr, "archiver verify: %v\n", err)
		return ExitUsage
	}

	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	var tw *tabwriter.Writer
	header := false
	if format == "table" {
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	}
	o.Report = func(p Problem) {
		if tw != nil {
			if !header {
				fmt.Fprintln(tw, "PROBLEM\tKEY\tDETAIL")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Kind, p.Key, cli.OneLine(p.Detail))
			return
		}
		b, _ := json.Marshal(p)
		_, _ = w.Write(append(b, '\n')) // a broken stdout shows in the exit status of the pipe
	}
	if !quiet {
		last := time.Now()
		o.Progress = func(done, total int, day string) {
			if time.Since(last) < 2*time.Second && done < total {
				return
			}
			last = time.Now()
			if total > 0 && day != "" {
				fmt.Fprintf(stderr, "archiver verify: %d/%d objects checked (day %s)\n", done, total, day)
			}
		}
	}
	started := time.Now()
	_, sum, err := Verify(ctx, store, o)
	if tw != nil {
		tw.Flush()
	}
	if err != nil {
		w.Flush()
		fmt.Fprintf(stderr, "archiver verify: %v\n", err)
		return ExitUsage
	}
	took := time.Since(started).Round(time.Millisecond)
	if sum.Digests == 0 && sum.Objects == 0 {
		w.Flush()
		fmt.Fprintf(stderr, "archiver verify: no digests and no objects for %s in %s: check --store and the dates\n", cli.Range(o.From, o.To), store)
		return ExitUsage
	}
	if format == "jsonl" {
		b, _ := json.Marshal(map[string]any{"summary": sum, "from": o.From, "to": cmp.Or(o.To, o.From), "took": took.String()})
		_, _ = w.Write(append(b, '\n'))
	} else {
		fmt.Fprintf(w, "verified %s: %d objects, %d digests, %d instances, %d events checked; %d problems (%s)\n",
			cli.Range(o.From, o.To), sum.Objects, sum.Digests, sum.Instances, sum.Events, sum.Problems, took)
		if sum.IncompleteCompactions > 0 {
			fmt.Fprintf(w, "note: %d compacted objects of an unfinished compaction are not there yet (the originals are intact); rerun archiver compact\n", sum.IncompleteCompactions)
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "archiver verify: writing output: %v\n", err)
		return ExitUsage
	}
	if sum.Problems > 0 {
		return ExitProblems
	}
	return ExitClean
}
