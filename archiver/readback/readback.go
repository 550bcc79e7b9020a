// Package readback reads the archive back: what auditors and `archiver events` use. It streams
// objects day by day in key order, so memory stays flat however large the range.
package readback

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// MaxDays caps one query's range, so a typo in a year does not scan decades of partitions.
const MaxDays = 366

// Query selects events. From and To are partition days (YYYY-MM-DD, inclusive; To defaults to
// From). Domain and Event filter exactly when non-empty.
type Query struct {
	From, To      string
	Domain, Event string
}

// Event is one archived record.
type Event struct {
	Raw                                          json.RawMessage // the full line as archived, without the newline
	Domain, App, Stream, Event, PublishTimestamp string          // PublishTimestamp: the string's contents or the number's literal
	Archive                                      layout.Archive
}

// ErrStop may be returned by Read's callback to end the read early without an error.
var ErrStop = errors.New("stop reading")

// Days validates q and returns its partition days in order.
func (q Query) Days() ([]string, error) {
	if q.From == "" {
		return nil, errors.New("missing --from: give the first day to read as YYYY-MM-DD")
	}
	from, err := time.Parse(layout.DayLayout, q.From)
	if err != nil {
		return nil, fmt.Errorf("invalid --from %q: want a date as YYYY-MM-DD", q.From)
	}
	to := from
	if q.To != "" {
		if to, err = time.Parse(layout.DayLayout, q.To); err != nil {
			return nil, fmt.Errorf("invalid --to %q: want a date as YYYY-MM-DD", q.To)
		}
	}
	if to.Before(from) {
		return nil, fmt.Errorf("--to %s is before --from %s", q.To, q.From)
	}
	n := int(to.Sub(from).Hours()/24) + 1
	if n > MaxDays {
		return nil, fmt.Errorf("range %s..%s spans %d days; at most %d days per query (split it up)", q.From, to.Format(layout.DayLayout), n, MaxDays)
	}
	days := make([]string, 0, n)
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(layout.DayLayout))
	}
	return days, nil
}

// Read calls fn for every matching line of every object under dt=From..dt=To, in key order.
// Objects ending in .jsonl.gz are gunzipped, .jsonl read as is, anything else skipped (the
// _rejected/ samples live outside the dt= prefixes). An error from fn stops the read and is
// returned, except ErrStop which ends it quietly.
func Read(ctx context.Context, s storage.Store, q Query, fn func(Event) error) error {
	days, err := q.Days()
	if err != nil {
		return err
	}
	for _, day := range days {
		objs, err := s.List(ctx, layout.DayPrefix(day))
		if err != nil {
			return fmt.Errorf("listing day %s: %w", day, err)
		}
		for _, o := range objs {
			ok, gz := layout.IsObjectKey(o.Key)
			if !ok {
				continue
			}
			if err := readObject(ctx, s, o.Key, gz, q, fn); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func readObject(ctx context.Context, s storage.Store, key string, gz bool, q Query, fn func(Event) error) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	defer rc.Close()
	var r io.Reader = rc
	if gz {
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return fmt.Errorf("reading %s: not a gzip file: %w", key, err)
		}
		defer zr.Close()
		r = zr
	}
	br := bufio.NewReaderSize(r, 256<<10)
	for lineNo := 1; ; lineNo++ {
		// ReadBytes: no line length limit, and each line is a fresh slice (Raw may be kept).
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) > 0 {
				ev, perr := ParseLine(line)
				if perr != nil {
					return fmt.Errorf("%s line %d: %w", key, lineNo, perr)
				}
				if (q.Domain == "" || ev.Domain == q.Domain) && (q.Event == "" || ev.Event == q.Event) {
					if ferr := fn(ev); ferr != nil {
						return ferr
					}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s line %d: %w", key, lineNo, err)
		}
		if lineNo%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// ParseLine decodes one archived line. Raw aliases line.
func ParseLine(line []byte) (Event, error) {
	// Explicit tags; note encoding/json still falls back to a case-insensitive match when a line
	// lacks the exact key. The archive field is last on the line, so it wins over any "archive"
	// key the sender put in its own body.
	var exact struct {
		Domain           json.RawMessage `json:"domain"`
		App              json.RawMessage `json:"app"`
		Stream           json.RawMessage `json:"stream"`
		Event            json.RawMessage `json:"event"`
		PublishTimestamp json.RawMessage `json:"publish_timestamp"`
		Archive          *layout.Archive `json:"archive"`
	}
	if err := json.Unmarshal(line, &exact); err != nil {
		return Event{}, fmt.Errorf("not an archive record: %w", err)
	}
	if exact.Archive == nil {
		return Event{}, errors.New(`not an archive record: no "archive" field`)
	}
	return Event{
		Raw:              json.RawMessage(line),
		Domain:           text(exact.Domain),
		App:              text(exact.App),
		Stream:           text(exact.Stream),
		Event:            text(exact.Event),
		PublishTimestamp: text(exact.PublishTimestamp),
		Archive:          *exact.Archive,
	}, nil
}

// text is a JSON string's contents, or any other value's literal text ("" for null/absent).
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}
