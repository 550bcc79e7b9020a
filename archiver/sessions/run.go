package sessions

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

const usage = `usage: archiver sessions --from DAY [--to DAY] [--store s3://BUCKET/PREFIX | --store file:///DIR]
                        [--s3-endpoint URL] [--s3-region R] [--domain D] [--app A] [--stream S]
                        [--event PUBLISH|PUBLISH_DONE] [--status closed|open|end_only]
                        [--format table|jsonl|csv] [--tz ZONE]

Lists the push sessions ("who streamed what, when", and from where) of the partition days
--from..--to (inclusive; a DAY is YYYY-MM-DD, today or yesterday, UTC): one per
(domain, app, stream, publish_timestamp), pairing its PUBLISH and PUBLISH_DONE callbacks. A session
is listed when either callback was received in the range; the partner is looked for one day beyond
each end. Copies of a callback (redeliveries, replicas, repeats) count once.

Fields (jsonl names, csv columns): domain, app, stream, publish_timestamp (unix seconds),
started_at (RFC 3339 UTC), ended_at (the PUBLISH_DONE's archive.received_at, or null), duration_s
(or null), status (closed, open, end_only), verified (every copy passed the signature check),
client_ip and node_ip (from the PUBLISH; from the PUBLISH_DONE for end_only), done_client_ip and
done_node_ip (the PUBLISH_DONE's where they differ, else null). --tz shows started_at and ended_at
in a zone (e.g. Asia/Shanghai) with its offset; the days read stay the same.
Sorted by started_at, then domain, app, stream. --format table (the default when stdout is a
terminal, else jsonl) ends with a summary line.

Memory stays bounded however long the range: one day's sessions plus a sort buffer; larger results
are sorted through temporary files in $TMPDIR. Callbacks without a usable publish_timestamp are
reported on stderr and not paired.
S3 credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, ~/.aws, or
the instance's IAM role. Without --store it reads ./archive, like "archiver serve".

flags:
`

// maxReported is how many unpairable callbacks are described one by one on stderr.
const maxReported = 10

// progressAfter is how long a read runs before it reports progress (on a terminal only).
const progressAfter = 2 * time.Second

// Run implements `archiver sessions`. args are the arguments after the subcommand name (a leading
// "sessions" is tolerated). Exit code 0 ok, 2 usage error, 1 runtime error; messages go to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "sessions" {
		args = args[1:]
	}
	// Ctrl-C ends the read cleanly (temporary files removed) instead of killing it mid-way.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := cli.NewFlagSet("sessions", usage, stderr)
	var (
		o      storage.Options
		q      Query
		status string
		format string
		days   cli.Days
		tz     string
	)
	cli.StoreFlags(fs, &o)
	cli.DayFlags(fs, &days)
	cli.FilterFlags(fs, &q.Filter, "sessions")
	cli.TZFlag(fs, &tz)
	fs.StringVar(&status, "status", "", "only sessions with this status: closed, open or end_only")
	fs.StringVar(&format, "format", "", "output format: table, jsonl or csv (default: table on a terminal, else jsonl)")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	st, err := ParseStatus(status)
	if err != nil {
		return usageErr("%v", err)
	}
	q.Status = st
	days = days.Resolve(time.Now())
	q.From, q.To = days.From, days.To
	loc, err := cli.Zone(tz)
	if err != nil {
		return usageErr("%v", err)
	}
	if format == "" {
		format = FormatJSONL
		if cli.IsTerminal(stdout) {
			format = FormatTable
		}
	}
	if _, err := q.Days(); err != nil {
		return usageErr("%v", err)
	}
	out, err := NewWriterIn(stdout, format, loc)
	if err != nil {
		return usageErr("%v", err)
	}
	store, err := storage.Open(ctx, o)
	if err != nil {
		return usageErr("%v", err)
	}

	prog := newProgress(stderr, cli.IsTerminal(stderr))
	var reported int
	opt := ReadOptions{
		Progress: prog.report,
		Unusable: func(day string, e readback.Event) {
			if reported++; reported > maxReported {
				return
			}
			why := fmt.Sprintf("publish_timestamp %s has no leading digits", strconv.Quote(e.PublishTimestamp))
			if e.Archive.PublishTime != nil {
				why = fmt.Sprintf("event %s is neither PUBLISH nor PUBLISH_DONE", strconv.Quote(e.Event))
			}
			prog.printf("archiver sessions: dt=%s: %s %s/%s/%s received %s: %s; not paired\n", day, cli.Cell(e.Event),
				cli.Cell(e.Domain), cli.Cell(e.App), cli.Cell(e.Stream), e.Archive.ReceivedAt.UTC().Format(time.RFC3339Nano), cli.Cell(why))
		},
	}
	stats, err := Read(ctx, store, q, opt, func(s Session) error {
		if out.Count() == 0 {
			prog.done() // the progress line must not sit in the middle of the output
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return out.Write(s)
	})
	prog.done()
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("writing output: %w", cerr)
	}
	if n := stats.Unusable + stats.NotPaired; n > 0 {
		more := ""
		if n > maxReported {
			more = fmt.Sprintf(" (the first %d are listed above)", maxReported)
		}
		fmt.Fprintf(stderr, "archiver sessions: not paired: %d callbacks of %s (%d without a usable publish_timestamp, %d with another event)%s\n",
			n, cli.Range(q.From, q.To), stats.Unusable, stats.NotPaired, more)
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver sessions: %v\n", err)
		return readback.ExitRuntime
	}
	if out.Count() == 0 {
		fmt.Fprintf(stderr, "archiver sessions: no matching sessions in %s for %s\n", store, cli.Range(q.From, q.To))
	}
	return readback.ExitOK
}

// progress prints a status line on a terminal once a read has run for progressAfter, at most a
// few times a second, and keeps it out of the way of other stderr messages.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	on      bool
	start   time.Time
	last    time.Time
	showing bool
}

func newProgress(w io.Writer, terminal bool) *progress {
	return &progress{w: w, on: terminal, start: time.Now()}
}

func (p *progress) report(pr Progress) {
	if !p.on {
		return
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.start) < progressAfter || now.Sub(p.last) < 250*time.Millisecond {
		return
	}
	p.last = now
	p.showing = true
	fmt.Fprintf(p.w, "\r\033[Karchiver sessions: reading dt=%s (day %d of %d), %d records, %s",
		pr.Day, pr.DayIndex+1, pr.Days, pr.Records, now.Sub(p.start).Truncate(time.Second))
}

func (p *progress) clear() {
	if p.showing {
		fmt.Fprint(p.w, "\r\033[K")
		p.showing = false
	}
}

func (p *progress) printf(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format, a...)
}

func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}
