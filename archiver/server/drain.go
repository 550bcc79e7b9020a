package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/relay"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

const drainUsage = `usage: archiver drain --spool DIR [--store s3://BUCKET/PREFIX | --store file:///DIR]
                     [--s3-endpoint URL] [--s3-region R] [--digest-key FILE] [--timeout D]

Uploads every event left in a spool directory to the store, without serving: the spool of a node
that is gone or scaled down, or of an archiver that ran out of --shutdown-timeout. Objects keep the
spool's instance name, so nothing collides with running replicas; with --digest-key (the spool's
own archiver's key) the uploads are listed in a digest that continues that instance's chain.
Exits 0 once the spool is empty, 1 when segments or pending dead letters are left (run it again),
2 on a usage error.
The spool must not be in use: a running archiver holds its lock. Drain does not forward: it names
the --forward destinations whose events stay queued in the spool. It also stores the dead-letter
objects the relay could not store yet (<spool>/relay/<name>/pending/), as a running relay would.

Flags:
`

// Drain is `archiver drain`.
func Drain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("drain", drainUsage, stderr)
	var so storage.Options
	cli.StoreFlags(fs, &so)
	c := DefaultConfig()
	c.Spool = ""
	fs.StringVar(&c.Spool, "spool", "", "the spool directory to upload (required; an archiver's --spool)")
	addDigestFlags(fs, &c.Digest)
	fs.DurationVar(&c.ShutdownTimeout, "timeout", 10*time.Minute, "give up after this long; what is not uploaded stays in the spool")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.BoolVar(&c.StoreProbe, "store-probe", c.StoreProbe, "check first that the store refuses to overwrite objects (as archiver serve does)")
	if code, done := cli.Parse(fs, args); done {
		return code
	}
	usage := cli.UsageError(fs, stderr)
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q (flags start with --)", fs.Arg(0))
	case c.Spool == "":
		return usage("--spool DIR is required: the spool directory to upload")
	case !spool.Exists(c.Spool):
		return usage("%s is not a spool directory (no instance.id in it); give the --spool directory of an archiver", c.Spool)
	case c.ShutdownTimeout <= 0:
		return usage("--timeout %s must be positive", c.ShutdownTimeout)
	}
	lvl, err := parseLevel(c.LogLevel)
	if err != nil {
		return usage("%v", err)
	}
	c.Store, c.S3Endpoint, c.S3Region = so.URL, so.Endpoint, so.Region
	c.Ack = AckSpool
	c.AllowUnsigned = true // nothing is served; New wants a trust choice
	c.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if err := c.Validate(); err != nil {
		return usage("%v", err)
	}
	start := time.Now()
	s, err := New(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "archiver drain: %v\n", err)
		return 1
	}
	// Shutdown seals the open segment, uploads every sealed one (bounded by --timeout) and writes
	// the shutdown digest: exactly a drain.
	err = s.Shutdown(ctx)
	queues := relayDir(c.Spool)
	left, bytes := s.spool.Pending(), s.spool.Bytes()
	fmt.Fprintf(stdout, "drained %s (instance %s) to %s: %d events in %d objects, %s\n", c.Spool, s.Instance(), s.store,
		s.metrics.Stored.Value(), s.metrics.ObjectsStored.Value(), time.Since(start).Round(time.Millisecond))
	if s.relay != nil {
		relayNote(stderr, queues, s.relay.Queues(), err == nil && left == 0)
	}
	// After Shutdown, so the relay's own background retry of these has stopped; through the
	// store the relay writes dead letters to, within what is left of --timeout.
	pctx, cancel := context.WithDeadline(ctx, start.Add(c.ShutdownTimeout))
	defer cancel()
	pending, perr := relay.StorePending(pctx, queues, s.store, s.log)
	pendingOK := pendingNote(stderr, queues, pending, perr, pctx.Err() != nil)
	if err != nil {
		fmt.Fprintf(stderr, "archiver drain: %v\n", err)
		return 1
	}
	if left > 0 {
		fmt.Fprintf(stderr, "archiver drain: %d segments (%d bytes) are still in %s: the store did not take them within --timeout; run archiver drain again\n", left, bytes, c.Spool)
		return 1
	}
	if !pendingOK {
		return 1
	}
	if damaged, _ := damagedFiles(c.Spool); len(damaged) > 0 {
		fmt.Fprintf(stderr, "archiver drain: damaged records were set aside, not uploaded; inspect them: %v\n", damaged)
	}
	return 0
}

// relayNote says which destinations' events were not forwarded: drain uploads, it does not
// forward, and deleting the volume would drop their queues.
func relayNote(w io.Writer, dir string, qs []relay.Queue, stored bool) {
	if len(qs) == 0 {
		return
	}
	var names []string
	from, to := "", ""
	for _, q := range qs {
		days := ""
		switch {
		case q.From != "" && q.From != q.To && q.To != "":
			days = ", dt=" + q.From + ".." + q.To
		case q.From != "":
			days = ", dt=" + q.From
		}
		names = append(names, fmt.Sprintf("%s (%d %s%s)", q.Name, q.Events, plural(int(q.Events), "event"), days))
		if q.From != "" && (from == "" || q.From < from) {
			from = q.From
		}
		if q.To > to {
			to = q.To
		}
	}
	name, days := "NAME", "--from DAY --to DAY"
	if len(qs) == 1 {
		name = qs[0].Name
	}
	if from != "" {
		days = fmt.Sprintf("--from %s --to %s", from, max(to, from))
	}
	replay := fmt.Sprintf("archiver replay %s --destination %s --forward-config FILE", days, name)
	when := "send them from the archive"
	if !stored {
		when = "once archiver drain has stored every segment, send them from the archive"
	}
	fmt.Fprintf(w, "archiver drain: events not yet forwarded to %s stay queued in %s (drain stores, it does not forward): serve this spool again with the same --forward/--forward-config to deliver them, or %s with %s\n",
		strings.Join(names, ", "), dir, when, replay)
}

// pendingNote says how many of the dead-letter objects the relay had kept under
// dir/<name>/pending/ (the store failed) drain stored, and which are still there: the spool may
// be deleted after a drain, and they would go with it. It reports whether none is left.
func pendingNote(w io.Writer, dir string, res []relay.PendingUploads, err error, timedOut bool) bool {
	again := "run archiver drain again once the store takes writes"
	if timedOut {
		again = "--timeout ran out; run archiver drain again"
	}
	ok := err == nil
	for _, p := range res {
		if p.Stored > 0 {
			fmt.Fprintf(w, "archiver drain: stored %d pending dead-letter %s of %s (under _deadletter/)\n", p.Stored, plural(p.Stored, "object"), p.Name)
		}
		pdir := filepath.Join(dir, p.Name, "pending")
		if p.Failed > 0 {
			ok = false
			fmt.Fprintf(w, "archiver drain: %d dead-letter %s of %s could not be stored and stay in %s: do not delete this spool yet; %s\n",
				p.Failed, plural(p.Failed, "object"), p.Name, pdir, again)
		}
		if p.Damaged > 0 {
			ok = false
			fmt.Fprintf(w, "archiver drain: %d damaged %s in %s not stored (the first line is not a _deadletter/ key; the log names each): inspect before deleting this spool\n",
				p.Damaged, plural(p.Damaged, "file"), pdir)
		}
	}
	if err != nil {
		fmt.Fprintf(w, "archiver drain: storing pending dead letters: %v\n", err)
	}
	return ok
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// damagedFiles lists what the spool set aside (<segment>.damaged, <segment>.unreadable).
func damagedFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".damaged") || strings.HasSuffix(n, ".unreadable") {
			out = append(out, n)
		}
	}
	return out, nil
}
