// Package sessions answers "who streamed what, when": it pairs the archived PUBLISH and
// PUBLISH_DONE callbacks of one push session, identified by (domain, app, stream,
// publish_timestamp), into one Session. `archiver sessions` prints them; the demo and tests use
// the same code.
//
// Memory: callbacks are read day by day in order. A Pairer keeps the distinct identities of the
// day being read (copies of one callback merge there) and a sort buffer of at most
// Options.SpillAfter partial sessions; a full buffer is sorted and written to a temporary file,
// and the files are merged at the end. Partial sessions of the same identity (a PUBLISH on one
// day, its PUBLISH_DONE days later, a redelivery in another object) meet in that merge, because
// the sort order is the session order. So what is held does not grow with the length of the
// range: one day's sessions plus the buffer.
package sessions

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/internal/cli"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
)

// Status says which callbacks of a session the archive holds.
type Status string

// Statuses of a Session.
const (
	Closed  Status = "closed"   // PUBLISH and PUBLISH_DONE
	Open    Status = "open"     // PUBLISH only: still streaming, or its PUBLISH_DONE was lost
	EndOnly Status = "end_only" // PUBLISH_DONE only: its PUBLISH is not in the archive
)

// ParseStatus checks a --status value ("" means any).
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case "", Closed, Open, EndOnly:
		return st, nil
	}
	return "", fmt.Errorf("invalid --status %q: want closed, open or end_only", s)
}

// Session is one push session.
type Session struct {
	Domain, App, Stream string
	PublishTimestamp    int64     // unix seconds: the session's start, shared by its PUBLISH and PUBLISH_DONE
	EndedAt             time.Time // archive.received_at of the first copy of its PUBLISH_DONE; zero without one
	Status              Status
	Verified            bool // every archived copy of its callbacks passed the signature check
	// ClientIP and NodeIP say from where: the pushing client and the Live node, from the first
	// copy of the PUBLISH (of the PUBLISH_DONE for an end_only session).
	ClientIP, NodeIP string
	// DoneClientIP and DoneNodeIP are the PUBLISH_DONE's values where they differ from the
	// PUBLISH's (a closed session only); empty when they agree.
	DoneClientIP, DoneNodeIP string
}

// StartedAt is PublishTimestamp as a time (UTC).
func (s Session) StartedAt() time.Time { return time.Unix(s.PublishTimestamp, 0).UTC() }

// DurationS is EndedAt - StartedAt in whole seconds (rounded down), ok false without an end.
func (s Session) DurationS() (d int64, ok bool) {
	if s.EndedAt.IsZero() {
		return 0, false
	}
	return s.EndedAt.Unix() - s.PublishTimestamp, true
}

// AppendJSON appends s as one JSON object with the documented field names and order:
// domain, app, stream, publish_timestamp, started_at, ended_at, duration_s, status, verified,
// client_ip, node_ip, done_client_ip, done_node_ip (the last four null when empty).
func (s Session) AppendJSON(dst []byte) []byte { return s.AppendJSONIn(dst, time.UTC) }

// AppendJSONIn is AppendJSON with started_at and ended_at in loc (RFC 3339 with its offset).
func (s Session) AppendJSONIn(dst []byte, loc *time.Location) []byte {
	dst = append(dst, `{"domain":`...)
	dst = appendJSONString(dst, s.Domain)
	dst = append(dst, `,"app":`...)
	dst = appendJSONString(dst, s.App)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, s.Stream)
	dst = append(dst, `,"publish_timestamp":`...)
	dst = strconv.AppendInt(dst, s.PublishTimestamp, 10)
	dst = append(dst, `,"started_at":"`...)
	dst = s.StartedAt().In(loc).AppendFormat(dst, time.RFC3339)
	dst = append(dst, `","ended_at":`...)
	if d, ok := s.DurationS(); ok {
		dst = append(dst, '"')
		dst = s.EndedAt.In(loc).AppendFormat(dst, cli.TimeLayout(loc, true))
		dst = append(dst, `","duration_s":`...)
		dst = strconv.AppendInt(dst, d, 10)
	} else {
		dst = append(dst, `null,"duration_s":null`...)
	}
	dst = append(dst, `,"status":"`...)
	dst = append(dst, s.Status...)
	dst = append(dst, `","verified":`...)
	dst = strconv.AppendBool(dst, s.Verified)
	for _, f := range [...]struct{ name, v string }{{"client_ip", s.ClientIP}, {"node_ip", s.NodeIP},
		{"done_client_ip", s.DoneClientIP}, {"done_node_ip", s.DoneNodeIP}} {
		dst = append(dst, `,"`...)
		dst = append(dst, f.name...)
		dst = append(dst, `":`...)
		if f.v == "" {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, f.v)
		}
	}
	return append(dst, '}')
}

// MarshalJSON is AppendJSON.
func (s Session) MarshalJSON() ([]byte, error) { return s.AppendJSON(nil), nil }

// Query selects sessions. A session is listed when a copy of its PUBLISH or PUBLISH_DONE lies in
// a partition day From..To (inclusive; To defaults to From); its partner is looked for one day
// beyond each end. Domain, App, Stream and Status filter exactly when not empty; Event
// (PUBLISH or PUBLISH_DONE) keeps the sessions whose archive holds that callback.
type Query struct {
	From, To string
	cli.Filter
	Status Status
}

// Days validates q and returns the partition days to read: the day before From through the day
// after To.
func (q Query) Days() (days []string, err error) {
	inner, err := readback.Query{From: q.From, To: q.To}.Days()
	if err != nil {
		return nil, err
	}
	if _, err := ParseStatus(string(q.Status)); err != nil {
		return nil, err
	}
	if err := q.Check(); err != nil {
		return nil, err
	}
	first, _ := time.Parse(layout.DayLayout, inner[0])
	last, _ := time.Parse(layout.DayLayout, inner[len(inner)-1])
	days = make([]string, 0, len(inner)+2)
	days = append(days, first.AddDate(0, 0, -1).Format(layout.DayLayout))
	days = append(days, inner...)
	return append(days, last.AddDate(0, 0, 1).Format(layout.DayLayout)), nil
}

// Stats counts what a read saw.
type Stats struct {
	Days      int   // partition days read by Read (the range plus one on each side)
	Records   int64 // archived lines read (after the domain/app/stream filters)
	Unusable  int64 // lines of the range without a usable publish_timestamp (archive.publish_time null): not paired
	NotPaired int64 // lines of the range with an event other than PUBLISH/PUBLISH_DONE: not paired
	Spilled   int   // sort buffers written to temporary files
}

// key identifies a session.
type key struct {
	domain, app, stream string
	pts                 int64
}

func compareKeys(a, b key) int {
	if c := cmp.Compare(a.pts, b.pts); c != 0 {
		return c
	}
	if c := cmp.Compare(a.domain, b.domain); c != 0 {
		return c
	}
	if c := cmp.Compare(a.app, b.app); c != 0 {
		return c
	}
	return cmp.Compare(a.stream, b.stream)
}

// seen is what the archive holds of one callback of a session, over all its copies.
type seen struct {
	ok       bool
	first    time.Time // earliest archive.received_at
	verified bool      // every copy verified
	// from is the client_ip and node_ip of the earliest copy (the smaller pair on a tie, so the
	// order of reading does not matter), joined by joinIPs: one string, interned by the Pairer,
	// keeps a partial small.
	from string
}

// joinIPs packs client and node into one string: len(client) as a uvarint, client, node (any
// separator byte could occur in a callback's value).
func joinIPs(client, node string) string {
	b := make([]byte, 0, binary.MaxVarintLen64+len(client)+len(node))
	b = binary.AppendUvarint(b, uint64(len(client)))
	return string(append(append(b, client...), node...))
}

// ips unpacks from (both empty for a damaged value).
func (s *seen) ips() (client, node string) {
	var n uint64
	for i, shift := 0, 0; i < len(s.from) && shift < 64; i, shift = i+1, shift+7 {
		c := s.from[i]
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if rest := s.from[i+1:]; n <= uint64(len(rest)) {
				return rest[:n], rest[n:]
			}
			break
		}
	}
	return "", ""
}

// earlierThan orders two copies: by received_at, then by (client_ip, node_ip).
func (s *seen) earlierThan(o *seen) bool {
	if !s.first.Equal(o.first) {
		return s.first.Before(o.first)
	}
	c1, n1 := s.ips()
	c2, n2 := o.ips()
	return c1 < c2 || (c1 == c2 && n1 < n2)
}

func (s *seen) add(o seen) {
	if !s.ok {
		*s = o
		return
	}
	if o.earlierThan(s) {
		s.first, s.from = o.first, o.from
	}
	s.verified = s.verified && o.verified
}

func (s *seen) merge(o seen) {
	if o.ok {
		s.add(o)
	}
}

// partial is what one part of the archive says about a session; partials of one key merge.
type partial struct {
	key
	pub, done seen
	listed    bool // a copy of one of its callbacks lies in the query's range
}

func (p *partial) merge(o *partial) {
	p.pub.merge(o.pub)
	p.done.merge(o.done)
	p.listed = p.listed || o.listed
}

func (p *partial) session() Session {
	s := Session{Domain: p.domain, App: p.app, Stream: p.stream, PublishTimestamp: p.pts}
	switch {
	case p.pub.ok && p.done.ok:
		s.Status, s.EndedAt, s.Verified = Closed, p.done.first, p.pub.verified && p.done.verified
		s.ClientIP, s.NodeIP = p.pub.ips()
		if client, node := p.done.ips(); p.done.from != p.pub.from {
			if client != s.ClientIP {
				s.DoneClientIP = client
			}
			if node != s.NodeIP {
				s.DoneNodeIP = node
			}
		}
	case p.pub.ok:
		s.Status, s.Verified = Open, p.pub.verified
		s.ClientIP, s.NodeIP = p.pub.ips()
	default:
		s.Status, s.EndedAt, s.Verified = EndOnly, p.done.first, p.done.verified
		s.ClientIP, s.NodeIP = p.done.ips()
	}
	return s
}

// Pairer pairs callbacks into sessions. Feed it every record of each partition day with Add, the
// days in increasing order (Query.Days), then call Finish once.
type Pairer struct {
	q      Query
	from   string // first listed day
	to     string // last listed day
	day    string // the day being read
	today  map[key]*partial
	sorter sorter
	stats  Stats
	ips    map[[2]string]string // interned seen.from values
	// Unusable, when set, is called for each record of the range that cannot be paired: no
	// usable publish_timestamp, or an event other than PUBLISH/PUBLISH_DONE.
	Unusable func(day string, e readback.Event)
}

// NewPairer starts pairing for q. opt may be the zero value.
func NewPairer(q Query, opt Options) (*Pairer, error) {
	days, err := q.Days()
	if err != nil {
		return nil, err
	}
	return &Pairer{
		q: q, from: days[1], to: days[len(days)-2],
		today:  map[key]*partial{},
		sorter: sorter{max: opt.spillAfter(), dir: opt.TempDir},
	}, nil
}

// Add takes one archived record of partition day. Records of one identity merge; records the
// query's filters exclude are ignored.
func (p *Pairer) Add(day string, e readback.Event) error {
	if day != p.day {
		if day < p.day {
			return fmt.Errorf("day %s added after day %s: days must come in order", day, p.day)
		}
		if err := p.endDay(); err != nil {
			return err
		}
		p.day = day
	}
	if !p.q.Match(e.Domain, e.App, e.Stream) {
		return nil
	}
	p.stats.Records++
	inRange := day >= p.from && day <= p.to
	pt := e.Archive.PublishTime
	isPub, isDone := e.Event == "PUBLISH", e.Event == "PUBLISH_DONE"
	if pt == nil || (!isPub && !isDone) {
		if inRange {
			if pt == nil {
				p.stats.Unusable++
			} else {
				p.stats.NotPaired++
			}
			if p.Unusable != nil {
				p.Unusable(day, e)
			}
		}
		return nil
	}
	k := key{domain: e.Domain, app: e.App, stream: e.Stream, pts: pt.Unix()}
	s := p.today[k]
	if s == nil {
		s = &partial{key: k}
		p.today[k] = s
	}
	c := seen{ok: true, first: e.Archive.ReceivedAt, verified: e.Archive.Signature == layout.SignatureVerified,
		from: p.fromWhere(e.ClientIP, e.NodeIP)}
	if isPub {
		s.pub.add(c)
	} else {
		s.done.add(c)
	}
	s.listed = s.listed || inRange
	return nil
}

// maxInterned bounds the interned from-where strings (client IPs are as many as the streams'
// clients; a new map starts when it is full).
const maxInterned = 1 << 14

// fromWhere returns client and node joined as seen.from, one copy per distinct pair.
func (p *Pairer) fromWhere(client, node string) string {
	k := [2]string{client, node}
	if f, ok := p.ips[k]; ok {
		return f
	}
	if p.ips == nil || len(p.ips) >= maxInterned {
		p.ips = make(map[[2]string]string, 64)
	}
	f := joinIPs(client, node)
	p.ips[k] = f
	return f
}

// endDay hands the day's partials to the sorter.
func (p *Pairer) endDay() error {
	for k, s := range p.today {
		if err := p.sorter.add(s); err != nil {
			return err
		}
		delete(p.today, k)
	}
	return nil
}

// Finish calls fn for every listed session that passes the filters, in order of started_at,
// then domain, app, stream, and releases the Pairer's temporary files. An error from fn ends it.
func (p *Pairer) Finish(fn func(Session) error) (Stats, error) {
	defer p.sorter.close()
	if err := p.endDay(); err != nil {
		return p.stats, err
	}
	p.stats.Spilled = p.sorter.spills
	var cur *partial
	emit := func() error {
		if cur == nil || !cur.listed {
			return nil
		}
		s := cur.session()
		if p.q.Status != "" && s.Status != p.q.Status {
			return nil
		}
		if (p.q.Event == cli.EventPublish && !cur.pub.ok) || (p.q.Event == cli.EventPublishDone && !cur.done.ok) {
			return nil
		}
		return fn(s)
	}
	err := p.sorter.each(func(s *partial) error {
		if cur != nil && cur.key == s.key {
			cur.merge(s)
			return nil
		}
		if err := emit(); err != nil {
			return err
		}
		c := *s
		cur = &c
		return nil
	})
	if err == nil {
		err = emit()
	}
	return p.stats, err
}

// Options tune a Pairer.
type Options struct {
	// SpillAfter is the most partial sessions held in memory for sorting before they go to a
	// temporary file (0 => DefaultSpillAfter).
	SpillAfter int
	// TempDir holds the spill files ("" => os.TempDir()).
	TempDir string
}

// DefaultSpillAfter keeps the sort buffer near 12 MB (about 180 bytes a partial session plus its
// names); a month of a million callbacks spills a few times.
const DefaultSpillAfter = 1 << 16

func (o Options) spillAfter() int {
	if o.SpillAfter <= 0 {
		return DefaultSpillAfter
	}
	return o.SpillAfter
}

// appendJSONString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
