// Package verify is `archiver verify`: it proves, offline and with nothing but the public key, that
// the archive of a day range is complete and unaltered, by checking every object and rejected
// sample against the signed digest chains (package digest).
//
// Check returns the result per day (DayReport: objects, events and the problems of that day) and
// per instance; Verify is the flat form. Both need nothing but the store and the public key.
package verify

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// Problem kinds.
const (
	Altered      = "altered"       // an object's bytes differ from the hash its digest lists
	Missing      = "missing"       // listed in a digest, not in the store
	Unlisted     = "unlisted"      // in the store, listed in no digest
	ChainBroken  = "chain_broken"  // a digest does not link to its previous digest
	BadSignature = "bad_signature" // a digest's signature does not verify (or it is not a digest)
	Gap          = "gap"           // time an instance ran that no digest covers
	Misplaced    = "misplaced"     // a digest found at another key, or signed for another archive
	Uncovered    = "uncovered"     // time of the range that no instance's digest covers
	Reappeared   = "reappeared"    // an original that a signed compaction deleted is back
)

// Problem is one finding.
type Problem struct {
	Kind   string `json:"problem"`
	Key    string `json:"key"`
	Detail string `json:"detail"`
	Day    string `json:"day,omitempty"` // the partition day it concerns ("" when none)
}

// Summary counts what was checked.
type Summary struct {
	Objects   int `json:"objects"`
	Digests   int `json:"digests"`
	Instances int `json:"instances"`
	Events    int `json:"events"`
	Problems  int `json:"problems"`
	// Compacted objects a compaction listed but did not finish writing, while the originals they
	// replace are all still there: not a problem (nothing is lost); a rerun of compact completes it.
	IncompleteCompactions int `json:"incomplete_compactions,omitempty"`
	// Originals a signed compaction named as removed that are still there because it has not
	// finished deleting them (a rerun of compact --delete-originals completes it).
	UndeletedOriginals int `json:"undeleted_originals,omitempty"`
	// Objects stored since their (running) instance's last digest: the next hourly digest lists
	// them. Not a problem yet; verify again after the next hour.
	Pending int `json:"pending,omitempty"`
	// Digests of format version 1, which do not name their own key and archive: accepted, but a
	// copy of one under its own instance and seq in another archive cannot be told apart.
	Unbound int `json:"unbound_digests,omitempty"`
}

// Instance is what verify saw of one chain in the window.
type Instance struct {
	Name     string `json:"instance"`
	Digests  int    `json:"digests"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	First    string `json:"first"` // start of the first digest's span
	Last     string `json:"last"`  // end of the last digest's span
	LastKind string `json:"last_kind"`
}

// DayReport is the result for one partition day.
type DayReport struct {
	Day      string    `json:"day"`
	InRange  bool      `json:"in_range"` // false: a neighbour day read as archiver sessions reads it
	Objects  int       `json:"objects"`
	Events   int       `json:"events"`
	Problems []Problem `json:"problems"`
}

// Report is the whole result of Check.
type Report struct {
	From, To  string
	Days      []DayReport // the range's days in order, then the neighbour days (InRange false)
	Instances []Instance  // archiver chains (compaction chains are not instances)
	Problems  []Problem   // every problem, as found
	Summary   Summary
	// Began is the start of the archive's first digest when the window holds it (the first digest
	// of a chain that witnessed no other): the hours of its day before it need no digest.
	Began string
}

// Options selects what to verify.
type Options struct {
	From, To  string // partition days, inclusive
	PublicKey ed25519.PublicKey
	// ArchiveID is the archive digests must be signed for; "" => the store's identity
	// (storage.Identity), as archiver serve signs by default.
	ArchiveID string
	// Margin is how many days either side of the range are read too (objects only): archiver
	// sessions reads one day beyond each end, so `archiver verify` checks Margin 1.
	Margin   int
	Now      func() time.Time                  // nil => time.Now
	Progress func(done, total int, day string) // nil => none
	Report   func(Problem)                     // called for each problem as found; nil => only returned
}

// Store is what verification reads.
type Store interface {
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error)
}

// verifier is the state of one run.
type verifier struct {
	Options
	store    Store
	archive  string
	digests  map[string]*loaded   // key -> digest
	listed   map[string][]listing // object key -> listings
	removed  map[string]string    // object key -> digest that removed it
	deleted  map[string]string    // object key -> digest that confirmed its deletion
	problems []Problem
	sum      *Summary
}

type loaded struct {
	key       string
	sum       string
	p         digest.Payload
	sigOK     bool
	misplaced bool // not where it was signed for: counts as absent
	start     time.Time
	end       time.Time
	before    bool // outside the window (read only to check a link or a witness)
}

type listing struct {
	e      digest.Entry
	digest *loaded
}

// digestsFrom and digestsTo widen the digest window around the range: objects of a day are
// stored (and listed) up to a day after it in UTC, and a partition day in a zone ahead of UTC
// begins the UTC day before.
const (
	digestsBefore = 1
	digestsAfter  = 2
)

// Verify checks the days From..To of store. It returns the problems found (also passed to
// o.Report as they are found) and what was checked; err is for usage and access errors only.
func Verify(ctx context.Context, store Store, opts Options) ([]Problem, Summary, error) {
	r, err := Check(ctx, store, opts)
	if err != nil {
		return nil, Summary{}, err
	}
	return r.Problems, r.Summary, nil
}

// Check verifies the days From..To of store (and Margin days either side, objects only) and
// returns the result per day and per instance; err is for usage and access errors only.
func Check(ctx context.Context, store Store, opts Options) (*Report, error) {
	r := &Report{From: opts.From, To: cmp.Or(opts.To, opts.From)}
	o := &verifier{Options: opts, store: store, sum: &r.Summary}
	days, err := readback.Query{From: o.From, To: o.To}.Days()
	if err != nil {
		return nil, err
	}
	if len(o.PublicKey) != ed25519.PublicKeySize {
		return nil, errors.New("missing public key: give --public-key FILE")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Margin < 0 {
		o.Margin = 0
	}
	o.archive = o.ArchiveID
	if o.archive == "" {
		if s, ok := store.(storage.Store); ok {
			o.archive = storage.Identity(s)
		}
	}
	o.digests, o.listed, o.removed, o.deleted = map[string]*loaded{}, map[string][]listing{}, map[string]string{}, map[string]string{}
	first, _ := time.Parse(layout.DayLayout, days[0])
	last, _ := time.Parse(layout.DayLayout, days[len(days)-1])
	// Objects of the range and of the neighbour days read like archiver sessions reads them.
	objDays := slices.Clone(days)
	for i := 1; i <= o.Margin; i++ {
		objDays = append(objDays, first.AddDate(0, 0, -i).Format(layout.DayLayout), last.AddDate(0, 0, i).Format(layout.DayLayout))
	}
	winStart := first.AddDate(0, 0, -digestsBefore-o.Margin)
	winEnd := last.AddDate(0, 0, digestsAfter+1+o.Margin)

	// 1. Digests of the window.
	for d := winStart; d.Before(winEnd); d = d.AddDate(0, 0, 1) {
		objs, err := store.List(ctx, digest.DayPrefix(d))
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("listing digests of %s: %w", d.Format(layout.DayLayout), err)
		}
		for _, ob := range objs {
			if !digest.IsKey(ob.Key) {
				o.add(Problem{Kind: BadSignature, Key: ob.Key, Detail: "not a digest file (unexpected name under " + digest.Prefix + ")"})
				continue
			}
			if _, err := o.loadDigest(ctx, ob.Key, false); err != nil {
				return nil, err
			}
		}
	}
	// 2. Chains, gaps and witnesses, per instance; then what the range's hours have.
	r.Instances = o.checkChains(ctx, winEnd)
	o.checkWitnesses(ctx)
	for _, d := range o.digests {
		if !d.before {
			r.Summary.Digests++
		}
	}
	r.Summary.Instances = len(r.Instances)
	r.Began = o.checkCoverage(days)
	// 3. Objects of the range.
	present := map[string]bool{}
	var keys []storage.ObjectInfo
	for _, day := range objDays {
		for _, prefix := range []string{layout.DayPrefix(day), layout.RejectedDayPrefix(day)} {
			objs, err := store.List(ctx, prefix)
			if err != nil && !errors.Is(err, storage.ErrNotExist) {
				return nil, fmt.Errorf("listing %s: %w", prefix, err)
			}
			keys = append(keys, objs...)
		}
	}
	perDay := map[string]*DayReport{}
	for _, d := range objDays {
		perDay[d] = &DayReport{Day: d, InRange: slices.Contains(days, d)}
	}
	running := o.running()
	for i, ob := range keys {
		if o.Progress != nil {
			o.Progress(i, len(keys), dayOf(ob.Key))
		}
		present[ob.Key] = true
		body, err := storage.ReadAll(ctx, store, ob.Key)
		if err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				present[ob.Key] = false // removed while we listed
				continue
			}
			return nil, fmt.Errorf("reading %s: %w", ob.Key, err)
		}
		r.Summary.Objects++
		e, derr := digest.Describe(ob.Key, body)
		r.Summary.Events += e.Records
		if dr := perDay[dayOf(ob.Key)]; dr != nil {
			dr.Objects++
			dr.Events += e.Records
		}
		if dk, ok := o.removed[ob.Key]; ok && o.removedSum(dk, ob.Key) == e.SHA256 {
			if ck, done := o.deleted[ob.Key]; done {
				o.add(Problem{Kind: Reappeared, Key: ob.Key, Detail: fmt.Sprintf("compaction digest %s confirms it was deleted (its records are in the compacted objects), yet it is back: archiver events reads its %d records twice", ck, e.Records)})
			} else {
				r.Summary.UndeletedOriginals++
			}
			continue
		}
		ls := o.listed[ob.Key]
		if len(ls) == 0 {
			// Stored after its running instance's last digest (and not dated in the future, which
			// would keep it pending for good).
			if d := running(ob); d != nil && !ob.LastModified.Before(d.end.Add(-slack)) && !ob.LastModified.After(o.Now().Add(slack)) {
				r.Summary.Pending++
				continue
			}
			o.add(Problem{Kind: Unlisted, Key: ob.Key, Detail: fmt.Sprintf("%d bytes, %d records, in no digest", e.Size, e.Records)})
			continue
		}
		// Objects are never replaced, so every listing of a key names the same bytes.
		var bad *listing
		for i := range ls {
			if ls[i].e.SHA256 != e.SHA256 {
				bad = &ls[i]
				break
			}
		}
		if bad != nil {
			l := *bad
			detail := fmt.Sprintf("sha256 %s, digest %s lists %s (%d bytes, %d records; now %d bytes, %d records)",
				short(e.SHA256), l.digest.key, short(l.e.SHA256), l.e.Size, l.e.Records, e.Size, e.Records)
			if derr != nil {
				detail += "; " + derr.Error()
			}
			o.add(Problem{Kind: Altered, Key: ob.Key, Detail: detail})
		}
	}
	if o.Progress != nil {
		o.Progress(len(keys), len(keys), "")
	}
	// 4. Listed objects of the range that are gone.
	var listedKeys []string
	for k := range o.listed {
		listedKeys = append(listedKeys, k)
	}
	sort.Strings(listedKeys)
	for _, k := range listedKeys {
		if present[k] || perDay[dayOf(k)] == nil {
			continue
		}
		if _, ok := o.removed[k]; ok {
			continue // removed by a signed compaction whose objects hold its records
		}
		incomplete := true
		for _, l := range o.listed[k] {
			if l.digest.p.Kind != digest.KindCompaction || len(l.digest.p.Removed) > 0 {
				incomplete = false
			}
		}
		if incomplete {
			r.Summary.IncompleteCompactions++
			continue
		}
		l := o.listed[k][0]
		o.add(Problem{Kind: Missing, Key: k, Detail: fmt.Sprintf("listed in digest %s (%d bytes, %d records), not in the store", l.digest.key, l.e.Size, l.e.Records)})
	}
	r.Problems = o.problems
	r.Summary.Problems = len(o.problems)
	for _, d := range objDays {
		dr := perDay[d]
		for _, p := range o.problems {
			if p.Day == d {
				dr.Problems = append(dr.Problems, p)
			}
		}
		r.Days = append(r.Days, *dr)
	}
	return r, nil
}

// slack is how far apart a digest's start may be from the previous one's end, and how late an
// hourly digest may be written after its hour.
const slack = 2 * time.Minute

// running returns, for an object, the digest its instance's chain ends with when that chain is
// still running (its last digest is hourly and recent): objects stored since are pending, not
// unlisted.
func (o *verifier) running() func(storage.ObjectInfo) *loaded {
	heads := map[string]*loaded{}
	now := o.Now()
	for _, d := range o.digests {
		if d.misplaced || !d.sigOK || d.p.Kind == digest.KindCompaction {
			continue
		}
		if h := heads[d.p.Instance]; h == nil || d.p.Seq > h.p.Seq {
			heads[d.p.Instance] = d
		}
	}
	for inst, h := range heads {
		if !runningKind(h.p.Kind) || now.Sub(h.end) > time.Hour+10*time.Minute {
			delete(heads, inst)
		}
	}
	return func(ob storage.ObjectInfo) *loaded {
		// The key's own instance, exactly: by prefix, instance "ra" would claim "ra-1"'s objects.
		n, ok := layout.ParseObjectKey(ob.Key)
		if !ok {
			n, ok = layout.ParseRejectedKey(ob.Key)
		}
		if !ok {
			return nil
		}
		return heads[n.Instance]
	}
}

// runningKind: a chain whose last digest is of this kind has a next digest due within the hour.
func runningKind(kind string) bool { return kind == digest.KindHourly || kind == digest.KindStart }

// removedSum is the hash the compaction digest dk names for the removed original key.
func (o *verifier) removedSum(dk, key string) string {
	if d := o.digests[dk]; d != nil {
		for _, r := range d.p.Removed {
			if r.Key == key {
				return r.SHA256
			}
		}
	}
	return ""
}

func (o *verifier) add(p Problem) {
	if p.Day == "" {
		p.Day = dayOf(p.Key)
		if kp, ok := digest.ParseKey(p.Key); ok && p.Day == "" {
			p.Day = kp.Day
		}
	}
	o.problems = append(o.problems, p)
	if o.Report != nil {
		o.Report(p)
	}
}

// loadDigest reads, checks and indexes one digest. before marks a digest outside the window.
// A digest found where it was not signed for is reported and then treated as absent.
func (o *verifier) loadDigest(ctx context.Context, key string, before bool) (*loaded, error) {
	if d, ok := o.digests[key]; ok {
		if d.misplaced {
			return nil, nil
		}
		return d, nil
	}
	b, err := storage.ReadAll(ctx, o.store, key)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading digest %s: %w", key, err)
	}
	p, derr := digest.Decode(b, o.PublicKey)
	if errors.Is(derr, digest.ErrMalformed) {
		o.add(Problem{Kind: BadSignature, Key: key, Detail: derr.Error()})
		return nil, nil
	}
	d := &loaded{key: key, sum: digest.Sum(b), p: p, sigOK: derr == nil, before: before}
	o.digests[key] = d
	if derr != nil {
		o.add(Problem{Kind: BadSignature, Key: key, Detail: derr.Error()})
	}
	if d.sigOK {
		if why := o.place(key, p); why != "" {
			d.misplaced = true
			o.add(Problem{Kind: Misplaced, Key: key, Detail: why})
			return nil, nil
		}
		if !p.Bound() && !before {
			o.sum.Unbound++
		}
	}
	d.start, _ = digest.ParseTime(p.Start)
	d.end, _ = digest.ParseTime(p.End)
	if !before {
		for _, e := range p.Objects {
			o.listed[e.Key] = append(o.listed[e.Key], listing{e: e, digest: d})
		}
		if d.sigOK {
			for _, r := range p.Removed {
				o.removed[r.Key] = key
				if p.Deleted {
					o.deleted[r.Key] = key
				}
			}
		}
	}
	return d, nil
}

// place says why a signed digest is not where it belongs ("" when it is): a version 2 digest names
// its own key and archive; a version 1 digest is checked against its key's instance and seq only.
func (o *verifier) place(key string, p digest.Payload) string {
	kp, ok := digest.ParseKey(key)
	switch {
	case !ok:
		return "a digest key archiver serve never writes (want _digests/YYYY/MM/DD/<instance>/<HHMMSS>-<seq>-<kind>.json)"
	case p.Bound() && p.Key != key:
		return fmt.Sprintf("signed as %s: copied or moved here (its objects do not count as listed)", p.Key)
	case p.Bound() && p.Archive != o.archive:
		return fmt.Sprintf("signed for archive %q, this is %q: copied from another bucket or prefix (if this archive was moved, give --archive-id %q)", p.Archive, o.archive, p.Archive)
	case kp.Instance != p.Instance || kp.Seq != p.Seq || kp.Kind != p.Kind:
		return fmt.Sprintf("signed as %s #%d (%s), filed as %s #%d (%s): copied or renamed", p.Instance, p.Seq, p.Kind, kp.Instance, kp.Seq, kp.Kind)
	}
	return ""
}

// checkChains checks every chain's links and, for archiver instances, that consecutive digests
// cover time without holes. It returns what it saw of each archiver instance.
func (o *verifier) checkChains(ctx context.Context, winEnd time.Time) []Instance {
	byInst := map[string][]*loaded{}
	for _, d := range o.digests {
		if !d.misplaced {
			byInst[d.p.Instance] = append(byInst[d.p.Instance], d)
		}
	}
	names := make([]string, 0, len(byInst))
	for n := range byInst {
		names = append(names, n)
	}
	sort.Strings(names)
	now := o.Now()
	var out []Instance
	for _, inst := range names {
		ds := byInst[inst]
		sort.Slice(ds, func(i, j int) bool {
			if ds[i].p.Seq != ds[j].p.Seq {
				return ds[i].p.Seq < ds[j].p.Seq
			}
			return ds[i].key < ds[j].key
		})
		linkedFrom := map[string]string{}
		for i, d := range ds {
			if i > 0 && ds[i-1].p.Seq == d.p.Seq {
				o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("a second digest #%d of %s (the other is %s)", d.p.Seq, inst, ds[i-1].key)})
			}
			if d.p.Previous == nil {
				if d.p.Seq != 1 {
					o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("digest %d of %s has no link to its previous digest", d.p.Seq, inst)})
				}
				continue
			}
			pk := d.p.Previous.Key
			if other, dup := linkedFrom[pk]; dup {
				o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("links to %s, which %s links to as well (a forked chain)", pk, other)})
			}
			linkedFrom[pk] = d.key
			prev, ok := o.digests[pk]
			if !ok {
				// Outside the window: the digest just before the range.
				var err error
				prev, err = o.loadDigest(ctx, pk, true)
				if err != nil {
					o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("previous digest %s cannot be read: %v", pk, err)})
					continue
				}
			}
			switch {
			case prev == nil || prev.misplaced:
				o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("previous digest %s is missing (deleted: the objects it listed are unaccounted for)", pk)})
			case prev.sum != d.p.Previous.SHA256:
				o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("previous digest %s has sha256 %s, this digest links to %s", pk, short(prev.sum), short(d.p.Previous.SHA256))})
			case prev.p.Instance != inst || prev.p.Seq+1 != d.p.Seq:
				o.add(Problem{Kind: ChainBroken, Key: d.key, Detail: fmt.Sprintf("previous digest %s is %s #%d, expected %s #%d", pk, prev.p.Instance, prev.p.Seq, inst, d.p.Seq-1)})
			case prev.p.Kind != digest.KindShutdown && prev.p.Kind != digest.KindCompaction && d.start.Sub(prev.end) > slack:
				o.add(Problem{Kind: Gap, Key: d.key, Detail: fmt.Sprintf("%s: no digest covers %s .. %s (the instance did not shut down cleanly, or digests were deleted)", inst, prev.p.End, d.p.Start)})
			}
		}
		// Holes inside the window where the chain is broken show as a time gap too.
		var inWin []*loaded
		for _, d := range ds {
			if !d.before {
				inWin = append(inWin, d)
			}
		}
		for i := 1; i < len(inWin); i++ {
			a, b := inWin[i-1], inWin[i]
			if b.p.Previous != nil && b.p.Previous.Key == a.key {
				continue // checked above
			}
			if a.p.Kind != digest.KindShutdown && a.p.Kind != digest.KindCompaction && b.start.Sub(a.end) > slack {
				o.add(Problem{Kind: Gap, Key: b.key, Detail: fmt.Sprintf("%s: no digest covers %s .. %s", inst, a.p.End, b.p.Start)})
			}
		}
		if n := len(inWin); n > 0 {
			l := inWin[n-1]
			limit := winEnd
			if now.Before(limit) {
				limit = now
			}
			if runningKind(l.p.Kind) && limit.Sub(l.end) > time.Hour+10*time.Minute {
				o.add(Problem{Kind: Gap, Key: l.key, Detail: fmt.Sprintf("%s: no digest after %s although the instance did not shut down cleanly (digests deleted, or the instance crashed)", inst, l.p.End)})
			}
			if l.p.Kind != digest.KindCompaction {
				f := inWin[0]
				out = append(out, Instance{Name: inst, Digests: n, FirstSeq: f.p.Seq, LastSeq: l.p.Seq, First: f.p.Start, Last: l.p.End, LastKind: l.p.Kind})
			}
		}
	}
	return out
}

// checkWitnesses requires every chain head a digest witnessed to be there with the bytes it saw:
// a chain deleted whole, or cut at its tail, is detected while any other chain ran after it.
func (o *verifier) checkWitnesses(ctx context.Context) {
	var ds []*loaded
	for _, d := range o.digests {
		if !d.before && d.sigOK && !d.misplaced {
			ds = append(ds, d)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].key < ds[j].key })
	done := map[string]bool{}
	for _, d := range ds {
		for _, h := range d.p.Witness {
			if done[h.Key] {
				continue
			}
			done[h.Key] = true
			w, ok := o.digests[h.Key]
			if !ok {
				var err error
				if w, err = o.loadDigest(ctx, h.Key, true); err != nil {
					o.add(Problem{Kind: ChainBroken, Key: h.Key, Detail: fmt.Sprintf("digest #%d of %s, witnessed by %s, cannot be read: %v", h.Seq, h.Instance, d.key, err)})
					continue
				}
			}
			switch {
			case w == nil || w.misplaced:
				o.add(Problem{Kind: ChainBroken, Key: h.Key, Detail: fmt.Sprintf("digest #%d of %s is missing, but %s saw it in the store: that chain was deleted from there on, with the objects it listed", h.Seq, h.Instance, d.key)})
			case w.sum != h.SHA256:
				o.add(Problem{Kind: ChainBroken, Key: h.Key, Detail: fmt.Sprintf("digest #%d of %s has sha256 %s, but %s saw it as %s", h.Seq, h.Instance, short(w.sum), d.key, short(h.SHA256))})
			}
		}
	}
}

// checkCoverage reports every hour of the range's days, up to now, that no archiver digest's span
// touches: no instance vouches for it. The hours of the archive's first day before its first
// digest (a chain's first digest that witnessed no other chain) are exempt. It returns that start.
func (o *verifier) checkCoverage(days []string) (began string) {
	type span struct{ start, end time.Time }
	var spans []span
	var genesis *loaded
	for _, d := range o.digests {
		if d.misplaced || !d.sigOK || d.p.Kind == digest.KindCompaction || d.end.IsZero() {
			continue
		}
		if d.start.Before(d.end) { // a start digest's empty span vouches for no hour
			spans = append(spans, span{d.start, d.end})
		}
		if !d.before && (genesis == nil || d.start.Before(genesis.start) || d.start.Equal(genesis.start) && d.key < genesis.key) {
			genesis = d
		}
	}
	var g time.Time
	if genesis != nil && genesis.p.Seq == 1 && genesis.p.Previous == nil && genesis.p.Bound() && len(genesis.p.Witness) == 0 {
		g, began = genesis.start, genesis.p.Start
	}
	limit := o.Now().Add(-10 * time.Minute) // an hourly digest is written just after its hour
	for _, day := range days {
		dayT, _ := time.Parse(layout.DayLayout, day)
		var runs [][2]time.Time
		hours, uncovered := 0, 0
		for h := dayT; h.Before(dayT.AddDate(0, 0, 1)); h = h.Add(time.Hour) {
			he := h.Add(time.Hour)
			if he.After(limit) {
				break
			}
			if !g.IsZero() && !he.After(g) && layout.Day(g, nil) == day {
				continue // before the archive began
			}
			hours++
			covered := false
			for _, s := range spans {
				if s.start.Before(he) && s.end.After(h) {
					covered = true
					break
				}
			}
			if covered {
				continue
			}
			uncovered++
			if n := len(runs); n > 0 && runs[n-1][1].Equal(h) {
				runs[n-1][1] = he
			} else {
				runs = append(runs, [2]time.Time{h, he})
			}
		}
		if uncovered > 0 && uncovered == hours && hours == 24 {
			o.add(Problem{Kind: Uncovered, Key: layout.DayPrefix(day), Day: day, Detail: fmt.Sprintf("no digest covers any hour of %s: no instance ran that day, or all its digests were deleted (its objects, if any, are unlisted)", day)})
			continue
		}
		for _, r := range runs {
			o.add(Problem{Kind: Uncovered, Key: layout.DayPrefix(day), Day: day, Detail: fmt.Sprintf("no digest covers %s .. %s UTC: no instance ran then, or its digests were deleted", r[0].Format("15:04"), hhmm(r[1], dayT))})
		}
	}
	return began
}

func hhmm(t, day time.Time) string {
	if !t.Before(day.AddDate(0, 0, 1)) {
		return "24:00"
	}
	return t.Format("15:04")
}

// dayOf is the partition day of an object key ("" when it has none).
func dayOf(key string) string {
	key = strings.TrimPrefix(key, "_rejected/")
	if !strings.HasPrefix(key, "dt=") {
		return ""
	}
	d, _, _ := strings.Cut(key[3:], "/")
	return d
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
