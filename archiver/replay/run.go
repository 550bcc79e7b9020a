// Package replay is `archiver replay`: it re-sends archived events (or a range's relay dead
// letters) to a receiver, in received_at order, the way the relay forwards them. This is how a
// new receiver is backfilled and how dead letters are recovered.
package replay

import (
	"bufio"
	"context"
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

	// Gather the range (one day at a time would bound memory; a range of events is what a
	// backfill sends, and received_at order across objects needs them sorted).
	var evs []readback.Event
	bad := 0
	if deadLetters {
		evs, bad, err = readDeadLetters(ctx, store, dayList, dest, f)
	} else {
		q.BadLine = func(b readback.BadLine) {
			bad++
			fmt.Fprintf(stderr, "archiver replay: skipping unreadable line: %v\n", b)
		}
		err = readback.Read(ctx, store, q, func(e readback.Event) error {
			e.Raw = slices.Clone(e.Raw)
			e.Body = slices.Clone(e.Body)
			evs = append(evs, e)
			return nil
		})
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver replay: %v\n", err)
		return 1
	}
	slices.SortStableFunc(evs, func(a, b readback.Event) int { return a.Archive.ReceivedAt.Compare(b.Archive.ReceivedAt) })

	if dryRun {
		w := bufio.NewWriter(stdout)
		for _, e := range evs {
			_, _ = w.Write(e.Raw)
			_ = w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			fmt.Fprintf(stderr, "archiver replay: writing output: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "archiver replay: dry run: %d events would be sent to %s\n", len(evs), d.Name)
		return 0
	}
	snd, err := relay.NewSender(d, keyOf, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return usageErr("%v", err)
	}
	var lim *rate.Limiter
	if perSec > 0 {
		lim = rate.NewLimiter(rate.Limit(perSec), 1)
	}
	prog := cli.IsTerminal(stderr)
	sent, failed := 0, 0
	for i, e := range evs {
		if lim != nil {
			if err := lim.Wait(ctx); err != nil {
				break
			}
		}
		if err := deliver(ctx, snd, e, retries); err != nil {
			failed++
			fmt.Fprintf(stderr, "archiver replay: event %s (received %s) not delivered: %v\n", e.Archive.EventID, e.Archive.ReceivedAt.Format(time.RFC3339), err)
		} else {
			sent++
		}
		if prog && (i%50 == 0 || i == len(evs)-1) {
			fmt.Fprintf(stderr, "\r%s %d/%d sent, %d failed", progressBar(i+1, len(evs)), sent, len(evs), failed)
			if i == len(evs)-1 {
				fmt.Fprintln(stderr)
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintf(stderr, "archiver replay: %d of %d events delivered to %s, %d failed\n", sent, len(evs), d.Name, failed)
	if failed > 0 || bad > 0 || ctx.Err() != nil {
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

// readDeadLetters reads the days' dead-letter objects (of dest only, when set), one event per
// event_id and body, filtered like events.
func readDeadLetters(ctx context.Context, st storage.Store, days []string, dest string, f cli.Filter) ([]readback.Event, int, error) {
	var out []readback.Event
	seen := map[string]bool{}
	bad := 0
	for _, day := range days {
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
				// --destination, they all go to the one --to-url).
				k := e.Archive.EventID + "\x00" + string(e.Body)
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
	}
	return out, bad, nil
}
