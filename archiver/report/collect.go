// Package report writes `archiver report`: one self-contained HTML page for auditors (no network
// when opened) with the summary, integrity per day, a zoomable timeline, a heat map of session
// starts, the top streams and a sortable, filterable session table of a day range.
//
// Half a million sessions must stay usable, so nothing is drawn per session up front: the Go side
// aggregates what is static (summary, heat map, top streams: inline SVG), and embeds the sessions
// once, column by column with interned names and delta-coded times, for the page's script to
// filter, sort and paginate, and to draw the timeline merged to the pixel at the current zoom.
package report

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/sessions"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Summary is the report's headline.
type Summary struct {
	Sessions, Closed, Open, EndOnly int
	Unverified                      int   // sessions with a copy that failed or lacked the signature check
	Streams, Domains, Clients       int   // distinct domain/app/stream, domains, client IPs
	Moved                           int   // closed sessions whose PUBLISH_DONE names another client or node
	StreamedS                       int64 // seconds streamed by closed sessions
}

// StreamTotal is one stream's share of the time streamed.
type StreamTotal struct {
	Name      string // domain/app/stream
	Sessions  int
	StreamedS int64 // closed sessions only
}

// Columns are the sessions as the page's script reads them: one array per field, names interned.
type Columns struct {
	T0      int64       `json:"t0"`      // unix seconds the first start is counted from
	Streams [][3]string `json:"streams"` // [domain, app, stream]
	IPs     []string    `json:"ips"`
	Start   []int64     `json:"s"`  // start - previous start (the first: - T0); sessions are in start order
	Dur     []int64     `json:"d"`  // seconds to the end (-1: open)
	Stream  []int32     `json:"k"`  // index into Streams
	Client  []int32     `json:"c"`  // index+1 into IPs, 0 = none
	Node    []int32     `json:"n"`  // index+1 into IPs, 0 = none
	DClient []int32     `json:"dc"` // the PUBLISH_DONE's client where it differs, as Client
	DNode   []int32     `json:"dn"` // the PUBLISH_DONE's node where it differs, as Node
	Flags   []int8      `json:"f"`  // status (0 closed, 1 open, 2 end_only) | 4 when verified
}

// Data is everything a report shows.
type Data struct {
	From, To    string // partition days (UTC)
	Loc         *time.Location
	RangeStart  time.Time // From 00:00 UTC
	RangeEnd    time.Time // the day after To, 00:00 UTC
	Summary     Summary
	Heat        Heat
	Top         []StreamTotal
	Cols        Columns
	Integrity   *Integrity // nil without --public-key
	Provenance  Provenance
	NotPaired   int64 // callbacks that could not be paired (no usable publish_timestamp, other event)
	RecordsRead int64
}

// Heat counts session starts by day (in Loc) and hour.
type Heat struct {
	Days   []string  // YYYY-MM-DD in Loc, every day from the first start to the last
	Counts [][24]int // per day, per hour
	Starts []int64   // unix seconds of each day's 00:00 in Loc
	Max    int       // the largest count
}

// Provenance says how the report was made.
type Provenance struct {
	Command   string
	Store     string
	Generated time.Time
	Version   string
}

// TopN is how many streams the top-streams chart shows.
const TopN = 15

// Collect reads the sessions of q from s and aggregates them.
func Collect(ctx context.Context, s storage.Store, q sessions.Query, loc *time.Location, opt sessions.ReadOptions) (*Data, error) {
	days, err := q.Days()
	if err != nil {
		return nil, err
	}
	first, _ := time.Parse(layout.DayLayout, days[1])
	last, _ := time.Parse(layout.DayLayout, days[len(days)-2])
	d := &Data{From: days[1], To: days[len(days)-2], Loc: loc, RangeStart: first, RangeEnd: last.AddDate(0, 0, 1)}
	a := newAggregator(d)
	stats, err := sessions.Read(ctx, s, q, opt, func(ss sessions.Session) error {
		a.add(ss)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.NotPaired, d.RecordsRead = stats.Unusable+stats.NotPaired, stats.Records
	a.finish()
	return d, nil
}

type aggregator struct {
	d        *Data
	streams  map[[3]string]int32
	ips      map[string]int32
	domains  map[string]struct{}
	totals   []StreamTotal
	prev     int64
	heat     map[string]*[24]int
	dayStart map[string]int64
}

func newAggregator(d *Data) *aggregator {
	return &aggregator{d: d, streams: map[[3]string]int32{}, ips: map[string]int32{}, domains: map[string]struct{}{},
		heat: map[string]*[24]int{}, dayStart: map[string]int64{}}
}

func (a *aggregator) ip(s string) int32 {
	if s == "" {
		return 0
	}
	i, ok := a.ips[s]
	if !ok {
		i = int32(len(a.d.Cols.IPs))
		a.ips[s] = i
		a.d.Cols.IPs = append(a.d.Cols.IPs, s)
	}
	return i + 1
}

func (a *aggregator) add(s sessions.Session) {
	c, sum := &a.d.Cols, &a.d.Summary
	k := [3]string{s.Domain, s.App, s.Stream}
	si, ok := a.streams[k]
	if !ok {
		si = int32(len(c.Streams))
		a.streams[k] = si
		c.Streams = append(c.Streams, k)
		a.totals = append(a.totals, StreamTotal{Name: s.Domain + "/" + s.App + "/" + s.Stream})
		a.domains[s.Domain] = struct{}{}
	}
	if len(c.Start) == 0 {
		c.T0, a.prev = s.PublishTimestamp, s.PublishTimestamp
	}
	c.Start = append(c.Start, s.PublishTimestamp-a.prev)
	a.prev = s.PublishTimestamp
	dur, hasEnd := s.DurationS()
	if !hasEnd {
		dur = -1
	}
	c.Dur = append(c.Dur, dur)
	c.Stream = append(c.Stream, si)
	c.Client = append(c.Client, a.ip(s.ClientIP))
	c.Node = append(c.Node, a.ip(s.NodeIP))
	c.DClient = append(c.DClient, a.ip(s.DoneClientIP))
	c.DNode = append(c.DNode, a.ip(s.DoneNodeIP))
	var f int8
	switch s.Status {
	case sessions.Open:
		f, sum.Open = 1, sum.Open+1
	case sessions.EndOnly:
		f, sum.EndOnly = 2, sum.EndOnly+1
	default:
		sum.Closed++
		sum.StreamedS += dur
		a.totals[si].StreamedS += dur
	}
	if s.Verified {
		f |= 4
	} else {
		sum.Unverified++
	}
	if s.DoneClientIP != "" || s.DoneNodeIP != "" {
		sum.Moved++
	}
	c.Flags = append(c.Flags, f)
	sum.Sessions++
	a.totals[si].Sessions++

	t := s.StartedAt().In(a.d.Loc)
	day := t.Format(layout.DayLayout)
	h := a.heat[day]
	if h == nil {
		h = &[24]int{}
		a.heat[day] = h
		y, m, dd := t.Date()
		a.dayStart[day] = time.Date(y, m, dd, 0, 0, 0, 0, a.d.Loc).Unix()
	}
	h[t.Hour()]++
}

func (a *aggregator) finish() {
	d := a.d
	d.Summary.Streams, d.Summary.Domains = len(d.Cols.Streams), len(a.domains)
	clients := map[int32]struct{}{}
	for _, c := range d.Cols.Client {
		if c != 0 {
			clients[c] = struct{}{}
		}
	}
	d.Summary.Clients = len(clients)

	top := slices.Clone(a.totals)
	slices.SortFunc(top, func(x, y StreamTotal) int {
		return cmp.Or(cmp.Compare(y.StreamedS, x.StreamedS), cmp.Compare(y.Sessions, x.Sessions), cmp.Compare(x.Name, y.Name))
	})
	d.Top = top[:min(len(top), TopN)]

	// Heat map rows: the days (in Loc) from the day before the range to its last, where starts of
	// listed sessions fall; starts further out (a PUBLISH_DONE in the range of a session begun long
	// before, or a clock that ran ahead) are summed in an "earlier" or "later" row, so the map's
	// size follows the range, not the oldest session.
	if len(a.heat) == 0 {
		return
	}
	y, m, dd := d.RangeStart.In(d.Loc).AddDate(0, 0, -1).Date()
	firstDay := time.Date(y, m, dd, 0, 0, 0, 0, d.Loc)
	lastDay := d.RangeEnd.Add(-time.Second).In(d.Loc)
	first, last := firstDay.Format(layout.DayLayout), lastDay.Format(layout.DayLayout)
	var earlier, later *[24]int
	for day, h := range a.heat {
		switch {
		case day < first:
			earlier = addRow(earlier, h)
		case day > last:
			later = addRow(later, h)
		}
	}
	add := func(label string, row [24]int, start int64) {
		d.Heat.Days = append(d.Heat.Days, label)
		d.Heat.Counts = append(d.Heat.Counts, row)
		d.Heat.Starts = append(d.Heat.Starts, start)
		for _, n := range row {
			d.Heat.Max = max(d.Heat.Max, n)
		}
	}
	if earlier != nil {
		add("earlier", *earlier, 0)
	}
	for t := firstDay; t.Format(layout.DayLayout) <= last; t = t.AddDate(0, 0, 1) {
		day := t.Format(layout.DayLayout)
		var row [24]int
		if h := a.heat[day]; h != nil {
			row = *h
		}
		add(day, row, t.Unix())
	}
	if later != nil {
		add("later", *later, 0)
	}
}

func addRow(sum, h *[24]int) *[24]int {
	if sum == nil {
		sum = &[24]int{}
	}
	for i, n := range h {
		sum[i] += n
	}
	return sum
}
