package readback

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Exit codes of Run.
const (
	ExitOK      = 0
	ExitRuntime = 1
	ExitUsage   = 2
)

const usage = `usage: archiver events --from YYYY-MM-DD [--to YYYY-MM-DD] [--store s3://BUCKET/PREFIX | --store file:///DIR]
                      [--s3-endpoint URL] [--s3-region R] [--domain D] [--event PUBLISH|PUBLISH_DONE]
                      [--format jsonl|table]

Prints the archived events of the days --from..--to (inclusive), one JSON object per line exactly
as archived (--format jsonl, the default) or as an aligned table (--format table). A callback
archived as a repeat (same event_id, different body) carries "repeat":true in its archive field
(REPEAT column in the table). An unreadable line is reported on stderr with its object and line
number, the rest is printed, and the exit status is 1.
S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, ~/.aws, or
the instance's IAM role. Without --store it reads ./archive, like "archiver serve".

flags:
`

// Run implements `archiver events`. args are the arguments after the subcommand name (a leading
// "events" is tolerated). Exit code 0 ok, 2 usage error, 1 runtime error; messages go to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "events" {
		args = args[1:]
	}
	fs := cli.NewFlagSet("events", usage, stderr)
	var (
		o      storage.Options
		q      Query
		format string
	)
	cli.StoreFlags(fs, &o)
	fs.StringVar(&q.From, "from", "", "first day to read, YYYY-MM-DD (required)")
	fs.StringVar(&q.To, "to", "", "last day to read, YYYY-MM-DD, inclusive (default: --from)")
	fs.StringVar(&q.Domain, "domain", "", "only events of this push domain")
	fs.StringVar(&q.Event, "event", "", "only PUBLISH or PUBLISH_DONE events")
	fs.StringVar(&format, "format", "jsonl", "output format: jsonl or table")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	switch q.Event {
	case "", "PUBLISH", "PUBLISH_DONE":
	default:
		return usageErr("invalid --event %q: want PUBLISH or PUBLISH_DONE", q.Event)
	}
	if format != "jsonl" && format != "table" {
		return usageErr("invalid --format %q: want jsonl or table", format)
	}
	if _, err := q.Days(); err != nil {
		return usageErr("%v", err)
	}
	store, err := storage.Open(ctx, o)
	if err != nil {
		return usageErr("%v", err)
	}

	w := bufio.NewWriterSize(stdout, 64<<10)
	var emit func(Event) error
	var tw *tabwriter.Writer
	switch format {
	case "jsonl":
		emit = func(e Event) error {
			if _, err := w.Write(e.Raw); err != nil {
				return err
			}
			return w.WriteByte('\n')
		}
	case "table":
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "RECEIVED_AT\tEVENT\tDOMAIN/APP/STREAM\tPUBLISH_TIME\tSIGNATURE\tREPEAT")
		emit = func(e Event) error {
			pt := "-"
			if e.Archive.PublishTime != nil {
				pt = e.Archive.PublishTime.UTC().Format(time.RFC3339)
			}
			repeat := "-"
			if e.Archive.Repeat {
				repeat = "repeat"
			}
			_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n",
				e.Archive.ReceivedAt.UTC().Format(layout.ReceivedAtLayout), cli.Cell(e.Event),
				cli.Cell(e.Domain)+"/"+cli.Cell(e.App)+"/"+cli.Cell(e.Stream), pt, cli.Cell(e.Archive.Signature), repeat)
			return err
		}
	}
	n, bad := 0, 0
	q.BadLine = func(b BadLine) {
		bad++
		fmt.Fprintf(stderr, "archiver events: skipping unreadable line: %v\n", b)
	}
	err = Read(ctx, store, q, func(e Event) error { n++; return emit(e) })
	if tw != nil {
		if ferr := tw.Flush(); err == nil {
			err = ferr
		}
	}
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing output: %w", ferr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver events: %v\n", err)
		return ExitRuntime
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "archiver events: %d unreadable line(s) skipped (listed above); %d events printed\n", bad, n)
		return ExitRuntime
	}
	if n == 0 {
		fmt.Fprintf(stderr, "archiver events: no matching events in %s for %s\n", store, cli.Range(q.From, q.To))
	}
	return ExitOK
}
