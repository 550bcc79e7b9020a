// Package sessionstest writes synthetic archives, the way `archiver serve` lays them out, with
// the traffic that makes pairing hard: sessions across midnight, redeliveries, replicas, repeats,
// lost PUBLISH or PUBLISH_DONE callbacks, and the publish_timestamp quirks of real input. Tests,
// benchmarks and the README check use it.
package sessionstest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Spec describes an archive.
type Spec struct {
	From             string        // first partition day, YYYY-MM-DD
	Days             int           // days of traffic (sessions may end after them)
	Streams          int           // distinct (domain, app, stream); 0 => 20
	MeanDuration     time.Duration // 0 => 2h
	MeanGap          time.Duration // between a stream's sessions; 0 => 1h
	Seed             uint64
	Gzip             bool
	RecordsPerObject int // 0 => 5000
}

// Result says what was written.
type Result struct {
	Records int
	Objects int
	Days    []string // days with objects
}

// Domains are the push domains the archive uses; callbacks of the first are signed.
var Domains = []string{"push.example.com", "open.example.com", "edge.example.net"}

type rec struct {
	at   time.Time
	inst string
	line []byte
}

// Write writes the archive to s. Memory holds one day's records plus those of sessions still
// running at its end.
func Write(ctx context.Context, s storage.Putter, spec Spec) (Result, error) {
	var res Result
	from, err := time.Parse(layout.DayLayout, spec.From)
	if err != nil {
		return res, fmt.Errorf("sessionstest: From %q: %w", spec.From, err)
	}
	if spec.Streams <= 0 {
		spec.Streams = 20
	}
	if spec.MeanDuration <= 0 {
		spec.MeanDuration = 2 * time.Hour
	}
	if spec.MeanGap <= 0 {
		spec.MeanGap = time.Hour
	}
	if spec.RecordsPerObject <= 0 {
		spec.RecordsPerObject = 5000
	}
	rng := rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x5e5510))
	next := make([]time.Time, spec.Streams) // each stream's next session start
	for i := range next {
		next[i] = from.Add(time.Duration(rng.Int64N(int64(spec.MeanGap))))
	}
	pending := map[string][]rec{} // by partition day
	var seq uint64
	end := from.AddDate(0, 0, spec.Days)
	flush := func(day string) error {
		rs := pending[day]
		delete(pending, day)
		if len(rs) == 0 {
			return nil
		}
		slices.SortStableFunc(rs, func(a, b rec) int { return a.at.Compare(b.at) })
		byInst := map[string][]rec{}
		var insts []string
		for _, r := range rs {
			if byInst[r.inst] == nil {
				insts = append(insts, r.inst)
			}
			byInst[r.inst] = append(byInst[r.inst], r)
		}
		slices.Sort(insts)
		for _, inst := range insts {
			list := byInst[inst]
			for len(list) > 0 {
				n := min(len(list), spec.RecordsPerObject)
				var lines []byte
				for _, r := range list[:n] {
					lines = append(lines, r.line...)
				}
				list = list[n:]
				seq++
				body, err := layout.EncodeObject(lines, spec.Gzip)
				if err != nil {
					return err
				}
				if err := s.Put(ctx, layout.ObjectKey(day, inst, seq, 0, spec.Gzip), body, layout.ContentType); err != nil {
					return fmt.Errorf("sessionstest: %w", err)
				}
				res.Objects++
				res.Records += n
			}
		}
		res.Days = append(res.Days, day)
		return nil
	}
	for d := from; d.Before(end); d = d.AddDate(0, 0, 1) {
		dayEnd := d.AddDate(0, 0, 1)
		for i := range next {
			for next[i].Before(dayEnd) {
				dur := time.Duration(rng.ExpFloat64() * float64(spec.MeanDuration))
				session(rng, i, next[i], dur, func(r rec) {
					day := layout.Day(r.at, nil)
					pending[day] = append(pending[day], r)
				})
				next[i] = next[i].Add(dur + time.Duration(rng.ExpFloat64()*float64(spec.MeanGap)) + time.Second)
			}
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := flush(layout.Day(d, nil)); err != nil {
			return res, err
		}
	}
	days := make([]string, 0, len(pending))
	for day := range pending {
		days = append(days, day)
	}
	slices.Sort(days)
	for _, day := range days {
		if err := flush(day); err != nil {
			return res, err
		}
	}
	return res, nil
}

// session emits the records of one session of stream i starting at start.
func session(rng *rand.Rand, i int, start time.Time, dur time.Duration, emit func(rec)) {
	domain := Domains[i%len(Domains)]
	stream := "room_" + strconv.Itoa(i)
	pts := start.Truncate(time.Second)
	ptsRaw := strconv.Quote(strconv.FormatInt(pts.Unix(), 10))
	verified := domain == Domains[0]
	p := rng.IntN(1000)
	var pubRaw, doneRaw = ptsRaw, ptsRaw
	switch {
	case p < 20: // the seed's quirk on the PUBLISH only
		pubRaw = strconv.Quote(strconv.FormatInt(pts.Unix(), 10) + ",")
	case p < 30: // a JSON number
		pubRaw, doneRaw = strconv.FormatInt(pts.Unix(), 10), strconv.FormatInt(pts.Unix(), 10)
	case p < 40: // no digits: cannot be paired
		pubRaw, doneRaw = `"unknown"`, `"unknown"`
	}
	lose := rng.IntN(100)
	pubAt := start.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
	doneAt := start.Add(dur).Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
	// From where: a PUBLISH_DONE now and then names another node or client than its PUBLISH
	// (chosen from pts, not the random source, so the sessions of a seed stay as they were).
	one := func(event, raw string, at time.Time) {
		client, node := "10.0.0.1", "10.1.0.1"
		if event == "PUBLISH_DONE" && pts.Unix()%7 == 0 {
			node = "10.1.0.2"
		}
		if event == "PUBLISH_DONE" && pts.Unix()%11 == 0 {
			client = "10.0.0.2"
		}
		inst := "gen-a"
		if rng.IntN(2) == 0 {
			inst = "gen-b"
		}
		emit(record(domain, stream, event, raw, at, inst, client, node, verified))
		switch c := rng.IntN(100); {
		case c < 4: // redelivery: the same body, later
			emit(record(domain, stream, event, raw, at.Add(time.Duration(1+rng.IntN(120))*time.Second), inst, client, node, verified))
		case c < 7: // replica: the same callback at another instance
			other := map[string]string{"gen-a": "gen-b", "gen-b": "gen-a"}[inst]
			emit(record(domain, stream, event, raw, at.Add(time.Duration(rng.IntN(200))*time.Millisecond), other, client, node, verified))
		case c < 9: // repeat: same identity, different body
			emit(record(domain, stream, event, raw, at.Add(time.Duration(1+rng.IntN(30))*time.Second), inst, "10.0.0.9", node, verified))
		}
	}
	if lose >= 3 {
		one("PUBLISH", pubRaw, pubAt)
	}
	if lose < 3 || lose >= 6 {
		one("PUBLISH_DONE", doneRaw, doneAt)
	}
}

// record is one archived line, as the archiver writes it.
func record(domain, stream, event, ptsRaw string, at time.Time, inst, clientIP, nodeIP string, verified bool) rec {
	body := fmt.Appendf(nil, `{"domain":%q,"app":"live","stream":%q,"user_args":"","client_ip":%q,"node_ip":%q,"publish_timestamp":%s,"event":%q}`,
		domain, stream, clientIP, nodeIP, ptsRaw, event)
	idTS := ptsRaw
	if s, err := strconv.Unquote(ptsRaw); err == nil {
		idTS = s
	}
	sig := layout.SignatureNone
	if verified {
		sig = layout.SignatureVerified
	}
	a := layout.Archive{
		ReceivedAt:  at.UTC(),
		EventID:     layout.EventID(domain, "live", stream, event, idTS),
		RemoteAddr:  "10.2.0.1:4000",
		Signature:   sig,
		PublishTime: layout.ParsePublishTimestamp([]byte(ptsRaw)),
		Instance:    inst,
	}
	return rec{at: at, inst: inst, line: layout.AppendRecord(nil, body, a)}
}
