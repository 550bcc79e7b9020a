package readback

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Exit codes of Run.
const (
	ExitOK      = 0
	ExitRuntime = 1
	ExitUsage   = 2
)

const usage = `usage: archiver events --from DAY [--to DAY] [--store s3://BUCKET/PREFIX | --store file:///DIR]
                      [--s3-endpoint URL] [--s3-region R] [--domain D] [--app A] [--stream S]
                      [--event PUBLISH|PUBLISH_DONE] [--format jsonl|table|csv] [--tz ZONE]

Prints the archived events of the partition days --from..--to (inclusive; a DAY is YYYY-MM-DD,
today or yesterday), one JSON object per line exactly as archived (--format jsonl, the default),
as an aligned table (--format table) or as CSV with a header row (--format csv: received_at,
event_id, event, domain, app, stream, publish_timestamp, publish_time, client_ip, node_ip,
signature, repeat, instance). --tz shows the table's and the CSV's times in a zone; jsonl stays as
archived. A callback archived as a repeat (same event_id, different body) carries "repeat":true in
its archive field (REPEAT column in the table). An unreadable line is reported on stderr with its
object and line number, the rest is printed, and the exit status is 1.
S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, ~/.aws, or
the instance's IAM role. Without --store it reads ./archive, like "archiver serve".

flags:
`

// CSVColumns are the header of --format csv, in order.
var CSVColumns = []string{"received_at", "event_id", "event", "domain", "app", "stream", "publish_timestamp",
	"publish_time", "client_ip", "node_ip", "signature", "repeat", "instance"}

// Run implements `archiver events`. args are the arguments after the subcommand name (a leading
// "events" is tolerated). Exit code 0 ok, 2 usage error, 1 runtime error; messages go to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "events" {
		args = args[1:]
	}
	fs := cli.NewFlagSet("events", usage, stderr)
	var (
		o      storage.Options
		days   cli.Days
		f      cli.Filter
		format string
		tz     string
	)
	cli.StoreFlags(fs, &o)
	cli.DayFlags(fs, &days)
	cli.FilterFlags(fs, &f, "events")
	cli.TZFlag(fs, &tz)
	fs.StringVar(&format, "format", "jsonl", "output format: jsonl, table or csv")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	if err := f.Check(); err != nil {
		return usageErr("%v", err)
	}
	if format != "jsonl" && format != "table" && format != "csv" {
		return usageErr("invalid --format %q: want jsonl, table or csv", cli.OneLine(format))
	}
	loc, err := cli.Zone(tz)
	if err != nil {
		return usageErr("%v", err)
	}
	days = days.Resolve(time.Now())
	q := Query{From: days.From, To: days.To, Domain: f.Domain, App: f.App, Stream: f.Stream, Event: f.Event}
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
	var cw *csv.Writer
	publishTime := func(e Event, layout string) string {
		if e.Archive.PublishTime == nil {
			return ""
		}
		return e.Archive.PublishTime.In(loc).Format(layout)
	}
	switch format {
	case "jsonl":
		emit = func(e Event) error {
			if _, err := w.Write(e.Raw); err != nil {
				return err
			}
			return w.WriteByte('\n')
		}
	case "csv":
		cw = csv.NewWriter(w)
		_ = cw.Write(CSVColumns) // an error sticks in cw
		emit = func(e Event) error {
			_ = cw.Write([]string{e.Archive.ReceivedAt.In(loc).Format(time.RFC3339Nano), e.Archive.EventID, e.Event,
				e.Domain, e.App, e.Stream, e.PublishTimestamp, publishTime(e, time.RFC3339), e.ClientIP, e.NodeIP,
				e.Archive.Signature, strconv.FormatBool(e.Archive.Repeat), e.Archive.Instance})
			return cw.Error()
		}
	case "table":
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "RECEIVED_AT\tEVENT\tDOMAIN/APP/STREAM\tPUBLISH_TIME\tCLIENT_IP\tNODE_IP\tSIGNATURE\tREPEAT")
		emit = func(e Event) error {
			repeat := "-"
			if e.Archive.Repeat {
				repeat = "repeat"
			}
			_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				e.Archive.ReceivedAt.In(loc).Format(cli.TimeLayout(loc, true)), cli.Cell(e.Event),
				cli.Cell(e.Domain)+"/"+cli.Cell(e.App)+"/"+cli.Cell(e.Stream), cli.Cell(publishTime(e, cli.TimeLayout(loc, false))),
				cli.Cell(e.ClientIP), cli.Cell(e.NodeIP), cli.Cell(e.Archive.Signature), repeat)
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
	if cw != nil {
		if cw.Flush(); err == nil {
			err = cw.Error()
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
