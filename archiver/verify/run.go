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
	// ExitPending: no problem found, but some objects are not provable yet (stored after their
	// running instance's last digest). Not a clean result: a planted object looks the same until
	// that instance's next hourly digest, so verify again after it.
	ExitPending = 3
)

const usage = `usage: archiver verify --from YYYY-MM-DD [--to YYYY-MM-DD] --public-key FILE
                      [--store s3://BUCKET/PREFIX | --store file:///DIR] [--s3-endpoint URL] [--s3-region R]
                      [--archive-id ID] [--format table|jsonl]

Checks that the archive of the days --from..--to is complete and unaltered: every object and
rejected-request sample against the signed digests the archivers wrote (archiver serve
--digest-key), the digests' signatures against --public-key (openssl pkey -in key.pem -pubout),
that each digest is where it was signed for (its key, and this archive), that every instance's
digest chain is unbroken and covers its time without gaps, that every chain head another instance
witnessed is still there, and that every hour of the range up to now is covered by a digest. The
objects of the day before and after the range are checked too: archiver sessions reads them.

Problems: altered (hash differs), missing (listed, not present), unlisted (present, in no digest),
chain_broken, bad_signature, gap, misplaced (a digest copied or moved), uncovered (hours no digest
covers), reappeared (an original a compaction deleted is back). Exit 0 when there is nothing to
report, 1 when there is, 2 on a usage or access error, 3 when objects stored since a running
instance's last digest are not provable yet (verify again after its next hourly digest). Each instance's first and last digest and
a summary line end the output; progress goes to stderr.

flags:
`

// Run implements `archiver verify`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("verify", usage, stderr)
	var (
		so      storage.Options
		o       Options
		days    cli.Days
		keyFile string
		format  string
		quiet   bool
	)
	cli.StoreFlags(fs, &so)
	cli.DayFlags(fs, &days)
	fs.StringVar(&o.ArchiveID, "archive-id", "", "the archive the digests must be signed for: archiver serve's --archive-id (default: the store, s3://BUCKET/PREFIX or file:///DIR)")
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
	days = days.Resolve(time.Now())
	o.From, o.To = days.From, days.To
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
	o.Margin = 1 // the days archiver sessions reads beyond the range
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
	r, err := Check(ctx, store, o)
	if tw != nil {
		tw.Flush()
	}
	if err != nil {
		w.Flush()
		fmt.Fprintf(stderr, "archiver verify: %v\n", err)
		return ExitUsage
	}
	sum := r.Summary
	took := time.Since(started).Round(time.Millisecond)
	if sum.Digests == 0 && sum.Objects == 0 {
		// Reported as uncovered (exit 1), never passed: a wiped day looks exactly like this.
		fmt.Fprintf(stderr, "archiver verify: no digests and no objects for %s in %s: if the store and the dates are right, everything of those days was deleted\n", cli.Range(o.From, o.To), store)
	}
	if format == "jsonl" {
		b, _ := json.Marshal(map[string]any{"summary": sum, "from": o.From, "to": cmp.Or(o.To, o.From), "took": took.String(),
			"instances": r.Instances, "began": r.Began})
		_, _ = w.Write(append(b, '\n'))
	} else {
		printInstances(w, r)
		fmt.Fprintf(w, "verified %s: %d objects, %d digests, %d instances, %d events checked; %d problems (%s)\n",
			cli.Range(o.From, o.To), sum.Objects, sum.Digests, sum.Instances, sum.Events, sum.Problems, took)
		printNotes(w, r)
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "archiver verify: writing output: %v\n", err)
		return ExitUsage
	}
	return exitCode(sum)
}

// exitCode is verify's answer for a summary: problems first, then objects not provable yet.
func exitCode(sum Summary) int {
	switch {
	case sum.Problems > 0:
		return ExitProblems
	case sum.Pending > 0:
		return ExitPending
	}
	return ExitClean
}

// printInstances writes each instance's first and last digest in the window.
func printInstances(w io.Writer, r *Report) {
	if len(r.Instances) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tDIGESTS\tFIRST\tSEQ\tLAST\tSEQ\tENDS WITH")
	for _, in := range r.Instances {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%s\n", cli.OneLine(in.Name), in.Digests, in.First, in.FirstSeq, in.Last, in.LastSeq, in.LastKind)
	}
	tw.Flush()
}

func printNotes(w io.Writer, r *Report) {
	sum := r.Summary
	if r.Began != "" {
		fmt.Fprintf(w, "note: the archive began at %s (a first digest that saw no other instance): nothing before it is covered\n", r.Began)
	}
	if sum.IncompleteCompactions > 0 {
		fmt.Fprintf(w, "note: %d compacted objects of an unfinished compaction are not there yet (the originals are intact); rerun archiver compact\n", sum.IncompleteCompactions)
	}
	if sum.UndeletedOriginals > 0 {
		fmt.Fprintf(w, "note: %d originals a compaction merged are not deleted yet (archiver events reads their records twice); rerun archiver compact --delete-originals\n", sum.UndeletedOriginals)
	}
	if sum.Pending > 0 {
		fmt.Fprintf(w, "note: %d objects were stored after their running instance's last digest and are not provable yet (exit %d): the next hourly digest lists them, or verify then reports them unlisted; verify again after it\n", sum.Pending, ExitPending)
	}
	if sum.Unbound > 0 {
		fmt.Fprintf(w, "note: %d digests are of format version 1: their signatures and chains are checked, but they do not name their own key and archive\n", sum.Unbound)
	}
}
