// Package replay is `archiver replay`: it re-sends archived events (or a range's relay dead
// letters) to a receiver, in received_at order, the way the relay forwards them. This is how a
// new receiver is backfilled and how dead letters are recovered.
package replay

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/relay"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

const usage = `usage: archiver replay --from DAY [--to DAY] (--to-url URL | --destination NAME --forward-config FILE)
                      [--dead-letters] [--domain D] [--app A] [--stream S] [--event PUBLISH|PUBLISH_DONE]
                      [--rate N] [--dry-run]
                      [--store s3://BUCKET/PREFIX | --store file:///DIR] [--s3-endpoint URL] [--s3-region R]

Re-sends the archived events of the days --from..--to (inclusive) in received_at order, one at a
time, with the headers the relay sets (X-Livehook-Event-Id, X-Livehook-Attempt), to --to-url or to
the destination NAME of a --forward-config file (its url, headers, timeout, ca_file and resign;
resign needs --keys). With --dead-letters it re-sends the relay's dead letters of those days
instead (of NAME only, with --destination). Days are YYYY-MM-DD, today or yesterday (UTC), and
the filters are those of archiver events. Retryable failures (timeouts, 408, 429, 5xx) are
retried with backoff; the exit status is 1 when an event could not be delivered, 2 on a usage
error. --dry-run lists what would be sent on stdout and sends nothing.

flags:
`

// Run implements `archiver replay`.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("replay", usage, stderr)
	var (
		o                         storage.Options
		days                      cli.Days
		f                         cli.Filter
		toURL, dest, fwdCfg, keys string
		deadLetters, dryRun       bool
		perSec                    float64
		retries                   int
	)
	cli.StoreFlags(fs, &o)
	cli.DayFlags(fs, &days)
	cli.FilterFlags(fs, &f, "events")
	fs.StringVar(&toURL, "to-url", "", "send to this http(s) URL")
	fs.StringVar(&dest, "destination", "", "send to this destination of --forward-config (and, with --dead-letters, only its dead letters)")
	fs.StringVar(&fwdCfg, "forward-config", "", "the archiver's --forward-config file, for --destination")
	fs.StringVar(&keys, "keys", "", "the archiver's --keys file, for a destination with resign: true")
	fs.BoolVar(&deadLetters, "dead-letters", false, "re-send the relay's dead letters of the days instead of all events")
	fs.Float64Var(&perSec, "rate", 0, "at most this many events per second (0: as fast as the receiver answers)")
	fs.IntVar(&retries, "retries", 5, "retries of an event after a retryable failure before it counts as failed")
	fs.BoolVar(&dryRun, "dry-run", false, "list the events that would be sent (JSON Lines) and send nothing")
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
	days = days.Resolve(time.Now())
	q := readback.Query{From: days.From, To: days.To, Domain: f.Domain, App: f.App, Stream: f.Stream, Event: f.Event}
	dayList, err := q.Days()
	if err != nil {
		return usageErr("%v", err)
	}
	if perSec < 0 || retries < 0 {
		return usageErr("--rate and --retries must not be negative")
	}
	d, err := target(toURL, dest, fwdCfg)
	if err != nil {
		return usageErr("%v", err)
	}
	keyOf := func(string) (string, bool) { return "", false }
	if keys != "" {
		m, err := intake.LoadKeysFile(keys)
		if err != nil {
			return usageErr("%v", err)
		}
		keyOf = func(domain string) (string, bool) {
			k := m[intake.CanonicalDomain(domain)]
			if len(k) == 0 {
				return "", false
			}
			return k[0], true
		}
	}
	store, err := storage.Open(ctx, o)
	if err != nil {
		return usageErr("%v", err)
	}

	var snd *relay.Sender
	if !dryRun {
		if snd, err = relay.NewSender(d, keyOf, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
			return usageErr("%v", err)
		}
	}
	r := &replayer{snd: snd, retries: retries, stderr: stderr, prog: cli.IsTerminal(stderr)}
	if dryRun {
		r.out = bufio.NewWriter(stdout)
	}
	if perSec > 0 {
		r.lim = rate.NewLimiter(rate.Limit(perSec), 1)
	}

	// One partition day at a time, so memory holds about a day of events, not the range. A later
	// day can still hold events received before some of this day's (see laterDaysFrom): those of
	// this day that may sort after them are carried over to the next day's sort.
	var carry []readback.Event
	bad := 0
	seen := map[[sha256.Size]byte]bool{}
	for i, day := range dayList {
		var evs []readback.Event
		if deadLetters {
			var n int
			evs, n, err = readDeadLetters(ctx, store, day, dest, f, seen)
			bad += n
		} else {
			dq := q
			dq.From, dq.To = day, day
			dq.BadLine = func(b readback.BadLine) {
				bad++
				fmt.Fprintf(stderr, "archiver replay: skipping unreadable line: %v\n", b)
			}
			err = readback.Read(ctx, store, dq, func(e readback.Event) error {
				e.Raw = slices.Clone(e.Raw)
				e.Body = slices.Clone(e.Body)
				evs = append(evs, e)
				return nil
			})
		}
		if err != nil {
			r.send(ctx, day, carry) // the days before this one are then complete
			fmt.Fprintf(stderr, "archiver replay: %v; stopped before %s (run again with --from %s for the rest)\n", err, day, day)
			r.summary(ctx, d.Name, bad)
			return 1
		}
		r.read += len(evs)
		for _, e := range evs {
			if e.Archive.ReceivedAt.Before(r.last) {
				r.late++
			}
		}
		// Stable, carried events first: events received at the same instant keep the order of
		// the days, as one sort of the whole range gave.
		evs = append(carry, evs...)
		slices.SortStableFunc(evs, func(a, b readback.Event) int { return a.Archive.ReceivedAt.Compare(b.Archive.ReceivedAt) })
		n := len(evs)
		if i < len(dayList)-1 {
			n, _ = slices.BinarySearchFunc(evs, laterDaysFrom(day), func(e readback.Event, t time.Time) int { return e.Archive.ReceivedAt.Compare(t) })
		}
		r.send(ctx, day, evs[:n])
		carry = slices.Clone(evs[n:]) // not evs[n:]: the sent events' memory goes
		if ctx.Err() != nil || r.writeErr != nil {
			break
		}
	}
	return r.summary(ctx, d.Name, bad)
}

// laterDaysFrom is the earliest received_at that a partition day after day can hold. Each
// instance names the day of received_at in its own --partition-tz, the earliest zone (UTC+14)
// starting a day 14 hours before UTC; relay dead letters go under the day of the first event of
// their batch, which the spool may have committed a moment after the next one: an hour covers
// that.
func laterDaysFrom(day string) time.Time {
	t, _ := time.Parse(layout.DayLayout, day) // from Query.Days
	return t.AddDate(0, 0, 1).Add(-15 * time.Hour)
}

// replayer sends (or, with out set, lists) events and counts what happened.
type replayer struct {
	snd     *relay.Sender
	lim     *rate.Limiter
	retries int
	stderr  io.Writer
	prog    bool
	out     *bufio.Writer // --dry-run

	read, sent, failed int
	late               int       // events read after a later one was sent
	last               time.Time // the latest received_at sent
	writeErr           error
}

// send sends evs (sorted) in order; day names them on the progress bar.
func (r *replayer) send(ctx context.Context, day string, evs []readback.Event) {
	for i, e := range evs {
		if ctx.Err() != nil {
			return
		}
		if e.Archive.ReceivedAt.After(r.last) {
			r.last = e.Archive.ReceivedAt
		}
		if r.out != nil {
			_, _ = r.out.Write(e.Raw)
			if err := r.out.WriteByte('\n'); err != nil {
				r.writeErr = err
				return
			}
			r.sent++
			continue
		}
		if r.lim != nil {
			if err := r.lim.Wait(ctx); err != nil {
				return
			}
		}
		if err := deliver(ctx, r.snd, e, r.retries); err != nil {
			r.failed++
			fmt.Fprintf(r.stderr, "archiver replay: event %s (received %s) not delivered: %v\n", e.Archive.EventID, e.Archive.ReceivedAt.Format(time.RFC3339), err)
		} else {
			r.sent++
		}
		if r.prog && (i%50 == 0 || i == len(evs)-1) {
			fmt.Fprintf(r.stderr, "\r%s dt=%s %d/%d, %d sent, %d failed in all", progressBar(i+1, len(evs)), day, i+1, len(evs), r.sent, r.failed)
			if i == len(evs)-1 {
				fmt.Fprintln(r.stderr)
			}
		}
	}
}

// summary prints the outcome and returns the exit status.
func (r *replayer) summary(ctx context.Context, dest string, bad int) int {
	if r.late > 0 {
		fmt.Fprintf(r.stderr, "archiver replay: %d events were sent after events received later than them: they are filed under a dt= day that starts more than 15 hours (UTC) after they were received\n", r.late)
	}
	if r.out != nil {
		if err := errors.Join(r.writeErr, r.out.Flush()); err != nil {
			fmt.Fprintf(r.stderr, "archiver replay: writing output: %v\n", err)
			return 1
		}
		fmt.Fprintf(r.stderr, "archiver replay: dry run: %d events would be sent to %s\n", r.sent, dest)
		return 0
	}
	fmt.Fprintf(r.stderr, "archiver replay: %d of %d events delivered to %s, %d failed\n", r.sent, r.read, dest, r.failed)
	if r.failed > 0 || bad > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

func progressBar(done, total int) string {
	const width = 30
	n := width
	if total > 0 {
		n = done * width / total
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// target is the destination replay sends to.
func target(toURL, dest, fwdCfg string) (relay.Destination, error) {
	switch {
	case toURL != "" && dest == "":
		return relay.ParseForward("replay=" + toURL)
	case toURL == "" && dest == "":
		return relay.Destination{}, errors.New("say where to send: --to-url URL, or --destination NAME with --forward-config FILE")
	case fwdCfg == "":
		return relay.Destination{}, fmt.Errorf("--destination %s needs --forward-config FILE (the archiver's) to find its url", dest)
	}
	ds, err := relay.LoadConfig(fwdCfg)
	if err != nil {
		return relay.Destination{}, err
	}
	for _, d := range ds {
		if d.Name == dest {
			if toURL != "" { // dead letters of dest, sent to another URL
				return d.WithURL(toURL)
			}
			return d, nil
		}
	}
	return relay.Destination{}, fmt.Errorf("--destination %q is not in %s", dest, fwdCfg)
}

// backoffPolicy spaces replay's retries.
var backoffPolicy = backoff.Policy{Initial: 500 * time.Millisecond, Max: 30 * time.Second}

// deliver sends one event, retrying retryable failures.
func deliver(ctx context.Context, snd *relay.Sender, e readback.Event, retries int) error {
	for attempt := 1; ; attempt++ {
		status, after, msg, err := snd.Send(ctx, e, attempt, time.Now())
		if err == nil && status >= 200 && status < 300 {
			return nil
		}
		retry := relay.Retryable(status, err)
		if err == nil {
			err = errors.New(msg)
		}
		if !retry || attempt > retries || ctx.Err() != nil {
			return err
		}
		if ctxsleep.Sleep(ctx, max(after, backoffPolicy.Delay(attempt-1))) != nil {
			return ctx.Err()
		}
	}
}

// readDeadLetters reads a day's dead-letter objects (of dest only, when set), filtered like
// events. seen holds the events sent on earlier days: one send per event_id and body.
func readDeadLetters(ctx context.Context, st storage.Store, day, dest string, f cli.Filter, seen map[[sha256.Size]byte]bool) ([]readback.Event, int, error) {
	var out []readback.Event
	bad := 0
	prefix := layout.DeadLetterDayPrefix(day)
	if dest != "" {
		prefix += dest + "/"
	}
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, 0, fmt.Errorf("listing dead letters of %s: %w", day, err)
	}
	for _, obj := range objs {
		rc, err := st.Get(ctx, obj.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", obj.Key, err)
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 32<<20)
		for sc.Scan() {
			var dl struct {
				Event json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
				bad++
				continue
			}
			e, err := readback.ParseLine(slices.Clone([]byte(dl.Event)))
			if err != nil {
				bad++
				continue
			}
			if !f.Match(e.Domain, e.App, e.Stream) || f.Event != "" && e.Event != f.Event {
				continue
			}
			// One send per event, also when it died for several destinations (without
			// --destination, they all go to the one --to-url). A hash keeps the set small.
			k := sha256.Sum256(append([]byte(e.Archive.EventID+"\x00"), e.Body...))
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, e)
		}
		err = sc.Err()
		rc.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", obj.Key, err)
		}
	}
	return out, bad, nil
}
