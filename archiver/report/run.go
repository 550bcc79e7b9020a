package report

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// Version is the livehook version the report names (main sets it from the release tag).
var Version = "dev"

const usage = `usage: archiver report --from DAY [--to DAY] --out FILE.html [--store s3://BUCKET/PREFIX | --store file:///DIR]
                      [--s3-endpoint URL] [--s3-region R] [--domain D] [--app A] [--stream S]
                      [--event PUBLISH|PUBLISH_DONE] [--status closed|open|end_only] [--tz ZONE]
                      [--public-key FILE [--archive-id ID]]

Writes one self-contained HTML page (it loads nothing from the network; open it from a USB stick)
about the push sessions of the partition days --from..--to (a DAY is YYYY-MM-DD, today or
yesterday, UTC): a summary (sessions, streams, domains, time streamed, open and end-only
sessions), a timeline of sessions per stream zoomable to an hour, a heat map of session starts by
day and hour, the top streams by time streamed, the session table (sort, filter, search, client
and node IP) and how the report was made. The sessions are those "archiver sessions" lists for
the same flags. With --public-key it also runs "archiver verify" for each day and shows the
result with its problems. --tz shows times in a zone; the days read stay the same.
Exit 0 when written (also when a day does not verify: the page says so), 1 on a read error, 2 on
a usage error.

flags:
`

// Run implements `archiver report`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := cli.NewFlagSet("report", usage, stderr)
	var (
		so              storage.Options
		days            cli.Days
		f               cli.Filter
		tz, status, out string
		keyFile         string
		archiveID       string
	)
	cli.StoreFlags(fs, &so)
	cli.DayFlags(fs, &days)
	cli.FilterFlags(fs, &f, "sessions")
	fs.StringVar(&status, "status", "", "only sessions with this status: closed, open or end_only")
	cli.TZFlag(fs, &tz)
	fs.StringVar(&out, "out", "", "the HTML file to write (required; replaced atomically)")
	fs.StringVar(&keyFile, "public-key", "", "Ed25519 public key (PEM) of the archivers' --digest-key: show archiver verify's result per day")
	fs.StringVar(&archiveID, "archive-id", "", "with --public-key: the archive the digests must be signed for, as for archiver verify (default: the store)")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usageErr := cli.UsageError(fs, stderr)
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (all options are flags)", fs.Arg(0))
	}
	if out == "" {
		return usageErr("missing --out: give the HTML file to write, e.g. --out report.html")
	}
	// Checked before the read, which can take a while on a long range.
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		return usageErr("--out %s: the directory %s does not exist", cli.OneLine(out), cli.OneLine(filepath.Dir(out)))
	}
	st, err := sessions.ParseStatus(status)
	if err != nil {
		return usageErr("%v", err)
	}
	if err := f.Check(); err != nil {
		return usageErr("%v", err)
	}
	loc, err := cli.Zone(tz)
	if err != nil {
		return usageErr("%v", err)
	}
	days = days.Resolve(time.Now())
	q := sessions.Query{From: days.From, To: days.To, Filter: f, Status: st}
	if _, err := q.Days(); err != nil {
		return usageErr("%v", err)
	}
	var pub []byte
	if keyFile != "" {
		k, err := digest.LoadPublicKey(keyFile)
		if err != nil {
			return usageErr("%v", err)
		}
		pub = k
	}
	store, err := storage.Open(ctx, so)
	if err != nil {
		return usageErr("%v", err)
	}
	d, err := Collect(ctx, store, q, loc, sessions.ReadOptions{})
	if err != nil {
		fmt.Fprintf(stderr, "archiver report: %v\n", err)
		if ctx.Err() == nil {
			fmt.Fprintf(stderr, "archiver report: no report written; archiver verify --from %s --to %s --public-key FILE shows whether objects were damaged\n", q.From, cmp.Or(q.To, q.From))
		}
		return readback.ExitRuntime
	}
	if pub != nil {
		d.Integrity = checkRange(ctx, store, d.From, d.To, pub, archiveID)
	}
	d.Provenance = Provenance{Command: commandLine(args), Store: store.String(), Generated: time.Now(), Version: Version}
	if err := fsutil.ReplaceFile(out, 0o644, func(w *bufio.Writer) error { return Render(w, d) }); err != nil {
		fmt.Fprintf(stderr, "archiver report: writing %s: %v\n", out, err)
		return readback.ExitRuntime
	}
	var size int64
	if fi, err := os.Stat(out); err == nil {
		size = fi.Size()
	}
	abs, _ := filepath.Abs(out)
	fmt.Fprintf(stdout, "wrote %s: %d sessions of %s, %d bytes\n", abs, d.Summary.Sessions, cli.Range(d.From, d.To), size)
	if in := d.Integrity; in != nil {
		switch {
		case in.Err != "":
			fmt.Fprintf(stderr, "archiver report: the range could not be verified: %s; the report says so\n", cli.OneLine(in.Err))
		case in.Summary.Problems > 0:
			for _, c := range in.Days {
				if c.Count > 0 {
					fmt.Fprintf(stderr, "archiver report: day %s does not verify (%d problems); the report lists them\n", c.Day, c.Count)
				}
			}
			if len(in.Other) > 0 {
				fmt.Fprintf(stderr, "archiver report: %s..%s has problems of no one day (%s); the report lists them\n", d.From, d.To, in.Other[0].Kind)
			}
		}
	}
	return readback.ExitOK
}

// commandLine is how the report was asked for, quoted where a shell would need it.
func commandLine(args []string) string {
	parts := []string{"archiver", "report"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`*?[]{}()<>|&;#~") {
			a = strconv.Quote(a)
		}
		parts = append(parts, cli.OneLine(a))
	}
	return strings.Join(parts, " ")
}
