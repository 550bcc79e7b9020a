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
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/jsonscan"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// MaxDays caps one query's range, so a typo in a year does not scan decades of partitions.
const MaxDays = 366

// Query selects events. From and To are partition days (YYYY-MM-DD, inclusive; To defaults to
// From). Domain, App, Stream and Event filter exactly when non-empty.
type Query struct {
	From, To            string
	Domain, App, Stream string
	Event               string
	// BadLine, if set, is told about each line that is not a readable archive record; the read
	// goes on with the next line. When nil, Read still reads every other line and returns a
	// *BadLinesError at the end.
	BadLine func(BadLine)
}

// BadLine is one unreadable line: the object key, the 1-based line number, and why.
type BadLine struct {
	Key  string
	Line int
	Err  error
}

func (b BadLine) Error() string { return fmt.Sprintf("%s line %d: %v", b.Key, b.Line, b.Err) }

// BadLinesError is Read's error when lines were skipped and Query.BadLine was nil.
type BadLinesError struct {
	Count int
	First BadLine
}

func (e *BadLinesError) Error() string {
	if e.Count == 1 {
		return fmt.Sprintf("1 unreadable line skipped: %v", e.First)
	}
	return fmt.Sprintf("%d unreadable lines skipped, the first: %v", e.Count, e.First)
}

// Event is one archived record.
type Event struct {
	Raw                                          json.RawMessage // the full line as archived, without the newline
	Domain, App, Stream, Event, PublishTimestamp string          // PublishTimestamp: the string's contents or the number's literal
	ClientIP, NodeIP                             string          // "from where": the pushing client and the Live node
	Archive                                      layout.Archive
	// Body is the callback's fields as archived (compacted), without the archive field: the
	// identity of the callback (redelivery detection). Aliases Raw except for its final '}'.
	// Request gives the bytes Live sent.
	Body []byte
}

// Request is the callback exactly as Live sent it: the body byte for byte (archive.body, or
// Body when the two are the same) and its Content-Type (ok false: the request had none).
func (e *Event) Request() (body []byte, contentType string, ok bool) {
	body = e.Body
	if e.Archive.Body != "" {
		body = []byte(e.Archive.Body)
	}
	contentType, ok = e.Archive.RequestContentType()
	return body, contentType, ok
}

// ErrStop may be returned by Read's callback to end the read early without an error.
var ErrStop = errors.New("stop reading")

// Days validates q and returns its partition days in order.
func (q Query) Days() ([]string, error) {
	if q.From == "" {
		return nil, errors.New("missing --from: give the first day to read as YYYY-MM-DD, today or yesterday")
	}
	from, err := time.Parse(layout.DayLayout, q.From)
	if err != nil {
		return nil, fmt.Errorf("invalid --from %q: want a date as YYYY-MM-DD, today or yesterday", q.From)
	}
	to := from
	if q.To != "" {
		if to, err = time.Parse(layout.DayLayout, q.To); err != nil {
			return nil, fmt.Errorf("invalid --to %q: want a date as YYYY-MM-DD, today or yesterday", q.To)
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
	var bad *BadLinesError
	if q.BadLine == nil {
		q.BadLine = func(b BadLine) {
			if bad == nil {
				bad = &BadLinesError{First: b}
			}
			bad.Count++
		}
	}
	if err := readDays(ctx, s, days, q, fn); err != nil {
		return err
	}
	if bad != nil {
		return bad
	}
	return nil
}

func readDays(ctx context.Context, s storage.Store, days []string, q Query, fn func(Event) error) error {
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

func (q Query) match(e Event) bool {
	return (q.Domain == "" || e.Domain == q.Domain) && (q.App == "" || e.App == q.App) &&
		(q.Stream == "" || e.Stream == q.Stream) && (q.Event == "" || e.Event == q.Event)
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
					q.BadLine(BadLine{Key: key, Line: lineNo, Err: perr})
				} else if q.match(ev) {
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

// ParseLine decodes one archived line. Field names are matched exactly (never
// case-insensitively, unlike encoding/json), a repeated top-level name makes the line unreadable
// (which of the two would a reader believe?), and "archive" must be the last field, as livehook
// writes it. Raw and Body alias line.
func ParseLine(line []byte) (Event, error) {
	var f struct {
		domain, app, stream, event, pts json.RawMessage
		clientIP, nodeIP                json.RawMessage
	}
	var arch json.RawMessage
	archAt := -1 // offset of the end of the value before "archive"
	var seen keySet
	err := objectFields(line, func(key string, val json.RawMessage, prevEnd int) error {
		if seen.has(key) {
			return fmt.Errorf("field %q appears twice", truncate(key))
		}
		if arch != nil {
			return fmt.Errorf(`field %q follows "archive", which livehook writes last`, truncate(key))
		}
		switch key {
		case "domain":
			f.domain = val
		case "app":
			f.app = val
		case "stream":
			f.stream = val
		case "event":
			f.event = val
		case "publish_timestamp":
			f.pts = val
		case "client_ip":
			f.clientIP = val
		case "node_ip":
			f.nodeIP = val
		case "archive":
			arch, archAt = val, prevEnd
		}
		return nil
	})
	if err != nil {
		return Event{}, fmt.Errorf("not an archive record: %w", err)
	}
	if arch == nil {
		return Event{}, errors.New(`not an archive record: no "archive" field`)
	}
	a, err := parseArchive(arch)
	if err != nil {
		return Event{}, fmt.Errorf("not an archive record: %w", err)
	}
	var body []byte
	if archAt <= 1 {
		body = []byte("{}")
	} else {
		body = append(line[:archAt:archAt], '}')
	}
	return Event{
		Raw:              json.RawMessage(line),
		Domain:           text(f.domain),
		App:              text(f.app),
		Stream:           text(f.stream),
		Event:            text(f.event),
		PublishTimestamp: text(f.pts),
		ClientIP:         text(f.clientIP),
		NodeIP:           text(f.nodeIP),
		Archive:          a,
		Body:             body,
	}, nil
}

// parseArchive decodes the archive object with exact field names.
func parseArchive(raw json.RawMessage) (layout.Archive, error) {
	var a layout.Archive
	var seen keySet
	getStr := func(key string, v json.RawMessage, dst *string) error {
		s, ok := str(v)
		if !ok {
			return fmt.Errorf("archive.%s must be a string", key)
		}
		*dst = s
		return nil
	}
	err := scanFields(raw, func(key string, v json.RawMessage, _ int) error {
		if seen.has(key) {
			return fmt.Errorf("field archive.%s appears twice", truncate(key))
		}
		switch key {
		case "received_at":
			var s string
			if err := getStr(key, v, &s); err != nil {
				return err
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("archive.received_at %q is not an RFC 3339 time", truncate(s))
			}
			a.ReceivedAt = t
		case "event_id":
			return getStr(key, v, &a.EventID)
		case "remote_addr":
			return getStr(key, v, &a.RemoteAddr)
		case "signature":
			return getStr(key, v, &a.Signature)
		case "instance":
			return getStr(key, v, &a.Instance)
		case "publish_time":
			if string(v) == "null" {
				return nil
			}
			var s string
			if err := getStr(key, v, &s); err != nil {
				return err
			}
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return fmt.Errorf("archive.publish_time %q is not an RFC 3339 time", truncate(s))
			}
			a.PublishTime = &t
		case "content_type":
			var ct string
			if err := getStr(key, v, &ct); err != nil {
				return err
			}
			if strings.ContainsFunc(ct, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				return errors.New("archive.content_type holds a control character, which no HTTP header can carry")
			}
			a.ContentType = &ct
		case "body":
			if err := getStr(key, v, &a.Body); err != nil {
				return err
			}
			if a.Body == "" {
				return errors.New("archive.body is empty; livehook leaves the member out when the body is the record's fields")
			}
		case "repeat":
			if err := json.Unmarshal(v, &a.Repeat); err != nil {
				return errors.New("archive.repeat must be true or false")
			}
		}
		return nil
	})
	if err != nil {
		return layout.Archive{}, err
	}
	if !seen.contains("received_at") || !seen.contains("event_id") {
		return layout.Archive{}, errors.New("the archive field lacks received_at or event_id")
	}
	return a, nil
}

// objectFields calls fn for each top-level field of the JSON object b, in order, with its exact
// (unescaped) name, its raw value and the offset just past the previous value (or the '{'). b is
// validated first, so the scan below only has to find boundaries.
func objectFields(b []byte, fn func(key string, val json.RawMessage, prevEnd int) error) error {
	if !json.Valid(b) {
		var whole json.RawMessage
		return json.Unmarshal(b, &whole) // the precise message
	}
	return scanFields(b, fn)
}

// scanFields is objectFields for b already known to be valid JSON.
func scanFields(b []byte, fn func(key string, val json.RawMessage, prevEnd int) error) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i++
	prevEnd := i
	i = skipWS(b, i)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for i < len(b) {
		kend := jsonscan.StringEnd(b, i)
		if b[i] != '"' || kend < 0 {
			return errors.New("not a JSON object")
		}
		key := string(b[i+1 : kend-1])
		if bytes.IndexByte(b[i:kend], '\\') >= 0 {
			if err := json.Unmarshal(b[i:kend], &key); err != nil {
				return err
			}
		}
		i = skipWS(b, kend)
		if i >= len(b) || b[i] != ':' {
			return errors.New("not a JSON object")
		}
		i = skipWS(b, i+1)
		vend := jsonscan.ValueEnd(b, i)
		if vend < 0 {
			return errors.New("not a JSON object")
		}
		if err := fn(key, b[i:vend], prevEnd); err != nil {
			return err
		}
		prevEnd = vend
		i = skipWS(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return nil
		}
		return errors.New("not a JSON object")
	}
	return errors.New("not a JSON object")
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// str decodes a JSON string value, without encoding/json when it has no escapes.
func str(v json.RawMessage) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), true
	}
	var s string
	return s, json.Unmarshal(v, &s) == nil
}

// keySet remembers field names: a slice for the dozen a record has, a map past that.
type keySet struct {
	keys []string
	m    map[string]struct{}
}

// has reports whether k was added before, and adds it.
func (s *keySet) has(k string) bool {
	if s.contains(k) {
		return true
	}
	switch {
	case s.m != nil:
		s.m[k] = struct{}{}
	case len(s.keys) < 32:
		s.keys = append(s.keys, k)
	default:
		s.m = make(map[string]struct{}, 64)
		for _, x := range s.keys {
			s.m[x] = struct{}{}
		}
		s.m[k] = struct{}{}
	}
	return false
}

func (s *keySet) contains(k string) bool {
	if s.m != nil {
		_, ok := s.m[k]
		return ok
	}
	for _, x := range s.keys {
		if x == k {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "..."
}

// text is a JSON string's contents, or any other value's literal text ("" for null/absent).
func text(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if s, ok := str(raw); ok {
		return s
	}
	return string(raw)
}
