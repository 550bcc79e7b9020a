// Package verify is `archiver verify`: it proves, offline and with nothing but the public key, that
// the archive of a day range is complete and unaltered, by checking every object and rejected
// sample against the signed digest chains (package digest).
package verify

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
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
)

// Problem is one finding.
type Problem struct {
	Kind   string `json:"problem"`
	Key    string `json:"key"`
	Detail string `json:"detail"`
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
}

// Options selects what to verify.
type Options struct {
	From, To  string // partition days, inclusive
	PublicKey ed25519.PublicKey
	Now       func() time.Time                  // nil => time.Now
	Progress  func(done, total int, day string) // nil => none
	Report    func(Problem)                     // called for each problem as found; nil => only returned
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
	digests  map[string]*loaded   // key -> digest
	listed   map[string][]listing // object key -> listings
	removed  map[string]string    // object key -> digest that removed it
	problems []Problem
}

type loaded struct {
	key    string
	sum    string
	p      digest.Payload
	sigOK  bool
	start  time.Time
	end    time.Time
	before bool // the digest just before the window (read only to check a chain's first link)
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
	var sum Summary
	o := &verifier{Options: opts, store: store}
	days, err := readback.Query{From: o.From, To: o.To}.Days()
	if err != nil {
		return nil, sum, err
	}
	if len(o.PublicKey) != ed25519.PublicKeySize {
		return nil, sum, errors.New("missing public key: give --public-key FILE")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.digests, o.listed, o.removed = map[string]*loaded{}, map[string][]listing{}, map[string]string{}
	first, _ := time.Parse(layout.DayLayout, days[0])
	last, _ := time.Parse(layout.DayLayout, days[len(days)-1])
	winStart := first.AddDate(0, 0, -digestsBefore)
	winEnd := last.AddDate(0, 0, digestsAfter+1)

	// 1. Digests of the window.
	for d := winStart; d.Before(winEnd); d = d.AddDate(0, 0, 1) {
		objs, err := store.List(ctx, digest.DayPrefix(d))
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, sum, fmt.Errorf("listing digests of %s: %w", d.Format(layout.DayLayout), err)
		}
		for _, ob := range objs {
			if !digest.IsKey(ob.Key) {
				o.add(Problem{BadSignature, ob.Key, "not a digest file (unexpected name under " + digest.Prefix + ")"})
				continue
			}
			if _, err := o.loadDigest(ctx, ob.Key, false); err != nil {
				return nil, sum, err
			}
		}
	}
	// 2. Chains and gaps, per instance.
	instances := o.checkChains(ctx, winEnd)
	for _, d := range o.digests {
		if !d.before {
			sum.Digests++
		}
	}
	sum.Instances = instances
	// 3. Objects of the range.
	present := map[string]bool{}
	var keys []storage.ObjectInfo
	for _, day := range days {
		for _, prefix := range []string{layout.DayPrefix(day), layout.RejectedDayPrefix(day)} {
			objs, err := store.List(ctx, prefix)
			if err != nil && !errors.Is(err, storage.ErrNotExist) {
				return nil, sum, fmt.Errorf("listing %s: %w", prefix, err)
			}
			keys = append(keys, objs...)
		}
	}
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
			return nil, sum, fmt.Errorf("reading %s: %w", ob.Key, err)
		}
		sum.Objects++
		e, derr := digest.Describe(ob.Key, body)
		sum.Events += e.Records
		ls := o.listed[ob.Key]
		if len(ls) == 0 {
			o.add(Problem{Unlisted, ob.Key, fmt.Sprintf("%d bytes, %d records, in no digest", e.Size, e.Records)})
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
			o.add(Problem{Altered, ob.Key, detail})
		}
	}
	if o.Progress != nil {
		o.Progress(len(keys), len(keys), "")
	}
	// 4. Listed objects of the range that are gone.
	inRange := map[string]bool{}
	for _, d := range days {
		inRange[d] = true
	}
	var listedKeys []string
	for k := range o.listed {
		listedKeys = append(listedKeys, k)
	}
	sort.Strings(listedKeys)
	for _, k := range listedKeys {
		if present[k] || !inRange[dayOf(k)] {
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
			sum.IncompleteCompactions++
			continue
		}
		l := o.listed[k][0]
		o.add(Problem{Missing, k, fmt.Sprintf("listed in digest %s (%d bytes, %d records), not in the store", l.digest.key, l.e.Size, l.e.Records)})
	}
	sum.Problems = len(o.problems)
	return o.problems, sum, nil
}

func (o *verifier) add(p Problem) {
	o.problems = append(o.problems, p)
	if o.Report != nil {
		o.Report(p)
	}
}

// loadDigest reads, checks and indexes one digest. before marks the digest just before the window.
func (o *verifier) loadDigest(ctx context.Context, key string, before bool) (*loaded, error) {
	if d, ok := o.digests[key]; ok {
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
		o.add(Problem{BadSignature, key, derr.Error()})
		return nil, nil
	}
	d := &loaded{key: key, sum: digest.Sum(b), p: p, sigOK: derr == nil, before: before}
	if derr != nil {
		o.add(Problem{BadSignature, key, derr.Error()})
	}
	d.start, _ = digest.ParseTime(p.Start)
	d.end, _ = digest.ParseTime(p.End)
	o.digests[key] = d
	if !before {
		for _, e := range p.Objects {
			o.listed[e.Key] = append(o.listed[e.Key], listing{e: e, digest: d})
		}
		if d.sigOK {
			for _, r := range p.Removed {
				o.removed[r.Key] = key
			}
		}
	}
	return d, nil
}

// checkChains checks every chain's links and, for archiver instances, that consecutive digests
// cover time without holes. It returns the number of archiver instances seen.
func (o *verifier) checkChains(ctx context.Context, winEnd time.Time) int {
	byInst := map[string][]*loaded{}
	for _, d := range o.digests {
		byInst[d.p.Instance] = append(byInst[d.p.Instance], d)
	}
	names := make([]string, 0, len(byInst))
	for n := range byInst {
		names = append(names, n)
	}
	sort.Strings(names)
	slack := 2 * time.Minute
	now := o.Now()
	for _, inst := range names {
		ds := byInst[inst]
		sort.Slice(ds, func(i, j int) bool { return ds[i].p.Seq < ds[j].p.Seq })
		linkedFrom := map[string]string{}
		for _, d := range ds {
			if d.p.Previous == nil {
				if d.p.Seq != 1 {
					o.add(Problem{ChainBroken, d.key, fmt.Sprintf("digest %d of %s has no link to its previous digest", d.p.Seq, inst)})
				}
				continue
			}
			pk := d.p.Previous.Key
			if other, dup := linkedFrom[pk]; dup {
				o.add(Problem{ChainBroken, d.key, fmt.Sprintf("links to %s, which %s links to as well (a forked chain)", pk, other)})
			}
			linkedFrom[pk] = d.key
			prev, ok := o.digests[pk]
			if !ok {
				// Outside the window: the digest just before the range.
				var err error
				prev, err = o.loadDigest(ctx, pk, true)
				if err != nil {
					o.add(Problem{ChainBroken, d.key, fmt.Sprintf("previous digest %s cannot be read: %v", pk, err)})
					continue
				}
			}
			switch {
			case prev == nil:
				o.add(Problem{ChainBroken, d.key, fmt.Sprintf("previous digest %s is missing", pk)})
			case prev.sum != d.p.Previous.SHA256:
				o.add(Problem{ChainBroken, d.key, fmt.Sprintf("previous digest %s has sha256 %s, this digest links to %s", pk, short(prev.sum), short(d.p.Previous.SHA256))})
			case prev.p.Instance != inst || prev.p.Seq+1 != d.p.Seq:
				o.add(Problem{ChainBroken, d.key, fmt.Sprintf("previous digest %s is %s #%d, expected %s #%d", pk, prev.p.Instance, prev.p.Seq, inst, d.p.Seq-1)})
			case prev.p.Kind != digest.KindShutdown && prev.p.Kind != digest.KindCompaction && d.start.Sub(prev.end) > slack:
				o.add(Problem{Gap, d.key, fmt.Sprintf("%s: no digest covers %s .. %s (the instance did not shut down cleanly, or digests were deleted)", inst, prev.p.End, d.p.Start)})
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
				o.add(Problem{Gap, b.key, fmt.Sprintf("%s: no digest covers %s .. %s", inst, a.p.End, b.p.Start)})
			}
		}
		if n := len(inWin); n > 0 {
			l := inWin[n-1]
			limit := winEnd
			if now.Before(limit) {
				limit = now
			}
			if l.p.Kind == digest.KindHourly && limit.Sub(l.end) > time.Hour+10*time.Minute {
				o.add(Problem{Gap, l.key, fmt.Sprintf("%s: no digest after %s although the instance did not shut down cleanly (digests deleted, or the instance crashed)", inst, l.p.End)})
			}
		}
	}
	// Archiver instances only: compaction chains are not instances.
	n := 0
	for _, inst := range names {
		for _, d := range byInst[inst] {
			if !d.before && d.p.Kind != digest.KindCompaction {
				n++
				break
			}
		}
	}
	return n
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
