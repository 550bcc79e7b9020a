// Package compact is `archiver compact`: it merges every object of one partition day (all
// instances' objects and earlier compactions) into the fewest objects within a size bound, sorted
// by received_at, each callback once, and records what it wrote and removed in a signed
// compaction digest so `archiver verify` passes before and after the originals are deleted.
//
// Crash safety comes from the order of the steps: (1) a compaction digest listing the objects
// about to be written (verify tolerates those objects being absent while nothing was removed),
// (2) the compacted objects, (3) reading them back, (4) with --delete-originals a second digest
// naming the originals as removed, (5) the deletions. Names and bytes are deterministic, so a
// rerun after a crash at any step writes the same objects (a no-op Put) and finishes the rest.
//
// Memory stays far below the day's size: the first pass keeps one small index entry per distinct
// callback, and the compacted objects are built twice (once for their digest entries and the
// name's hash, once to write them) from lines read back out of the inputs in output order, each
// input decoded while it is needed.
package compact

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// Store is what compaction needs.
type Store interface {
	digest.ChainStore
	storage.Deleter
}

// Options configures one run.
type Options struct {
	Day             string             // partition day, YYYY-MM-DD
	Key             ed25519.PrivateKey // signs the compaction digests; nil => no digest (the day will not verify)
	DeleteOriginals bool
	ArchiveID       string // --archive-id; "" => the store's identity
	FlushBytes      int64  // upper bound of one compacted object's uncompressed lines
	Gzip            bool
	Now             func() time.Time
	Logger          *slog.Logger
	// Step, when set, is called after each step ("digest", "written", "checked", "removal-digest",
	// "deleted"); an error stops the run there (tests simulate crashes with it).
	Step func(step string) error
}

// Result says what a run did.
type Result struct {
	Inputs     int // objects read
	Records    int // records read
	Kept       int // records written (each callback once)
	Collapsed  int // redelivered copies dropped
	Written    []string
	Deleted    []string
	Unchanged  bool // the day was already compacted: nothing written or removed
	DigestKeys []string
}

// Compact runs one compaction of o.Day.
func Compact(ctx context.Context, store Store, o Options) (Result, error) {
	var res Result
	dayT, err := time.Parse(layout.DayLayout, o.Day)
	if err != nil {
		return res, fmt.Errorf("invalid --day %q: want YYYY-MM-DD", o.Day)
	}
	if o.FlushBytes <= 0 {
		return res, errors.New("--flush-bytes must be positive")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	step := func(name string) error {
		if o.Step != nil {
			return o.Step(name)
		}
		return nil
	}

	// 1. Read the day.
	objs, err := store.List(ctx, layout.DayPrefix(o.Day))
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return res, fmt.Errorf("listing day %s: %w", o.Day, err)
	}
	listedBefore, removedBefore, confirmedBefore := map[string]digest.Entry{}, map[string]string{}, map[string]bool{}
	if o.Key != nil {
		// Never merge what the digests do not vouch for: compaction would launder it into
		// objects signed as good.
		if err := checkDay(ctx, store, o); err != nil {
			return res, err
		}
		if err := earlier(ctx, store, o, dayT, listedBefore, removedBefore, confirmedBefore); err != nil {
			return res, err
		}
		if n, recs, ok := alreadyCompacted(objs, listedBefore); ok {
			res.Unchanged, res.Inputs, res.Records, res.Kept = true, n, recs, recs
			log.Info("day already compacted; nothing to do", "day", o.Day, "objects", n, "records", recs)
			return res, confirmDeletions(ctx, store, o, dayT, objs, listedBefore, removedBefore, confirmedBefore, &res)
		}
	}
	// The day is never held in memory: a first pass keeps only a small index entry per distinct
	// callback (refs), and the compacted lines are read back from the inputs in output order.
	src := newSource(ctx, store)
	byID := map[[32]byte]int32{} // identity -> index in refs
	var refs []ref
	for _, ob := range objs {
		if ok, _ := layout.IsObjectKey(ob.Key); !ok {
			continue
		}
		obj, lines, err := src.add(ob.Key)
		if err != nil {
			return res, err
		}
		res.Inputs++
		for off := 0; off < len(lines); {
			n := bytes.IndexByte(lines[off:], '\n')
			r := ref{obj: obj, off: int64(off)}
			if n < 0 {
				n, r.addNL = len(lines)-off, true
			} else {
				n++
			}
			raw := lines[off : off+n]
			off += n
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			if n > math.MaxInt32 {
				return res, fmt.Errorf("%s: a line longer than 2 GiB: not an archive object", ob.Key)
			}
			r.n = int32(n)
			at := digest.ReceivedAt(raw)
			if at == nil {
				return res, fmt.Errorf("%s: a line without archive.received_at: not an archive object", ob.Key)
			}
			res.Records++
			// Identity: everything before the archive field (the body as received).
			id := sha256.Sum256(raw[:bytes.LastIndex(raw, []byte(`"archive":{"received_at":"`))])
			i, seen := byID[id]
			if !seen {
				r.atOff, r.atLen = src.addAt(at)
				byID[id] = int32(len(refs))
				refs = append(refs, r)
				continue
			}
			// The earliest copy wins; on equal received_at the smaller line (ties are rare, so
			// reading the current winner's line back is cheap overall).
			cur := refs[i]
			c := bytes.Compare(at, src.at(cur))
			if c == 0 {
				curLine, err := src.line(cur)
				if err != nil {
					return res, err
				}
				c = bytes.Compare(r.bytes(lines), curLine)
			}
			if c < 0 {
				r.atOff, r.atLen = src.addAt(at)
				refs[i] = r
			}
		}
	}
	if res.Records == 0 {
		log.Info("nothing to compact", "day", o.Day, "objects", res.Inputs)
		res.Unchanged = true
		return res, nil
	}
	if err := src.sort(refs); err != nil {
		return res, err
	}
	res.Kept, res.Collapsed = len(refs), res.Records-len(refs)

	// 2. Plan the compacted objects: split by FlushBytes (line lengths alone decide it), name by
	// the hash of all lines. Each object's digest entry is computed from its bytes, which are
	// then dropped and built again when written.
	var chunks [][]ref
	var curBytes int64
	from := 0
	for i, r := range refs {
		if i > from && curBytes+r.size() > o.FlushBytes {
			chunks, from, curBytes = append(chunks, refs[from:i]), i, 0
		}
		curBytes += r.size()
	}
	chunks = append(chunks, refs[from:])
	src.plan(refs)
	h := sha256.New()
	entries := make([]digest.Entry, len(chunks))
	// The key's only part in the entry besides its name is the extension (gzip or not).
	provisional := layout.CompactedKey(o.Day, strings.Repeat("0", 16), 1, 1, o.Gzip)
	var enc layout.ObjectEncoder
	for i, c := range chunks {
		body, err := src.encode(&enc, c, o.Gzip, h)
		if err != nil {
			return res, err
		}
		if entries[i], err = digest.Describe(provisional, body); err != nil {
			return res, err
		}
	}
	setHash := hex.EncodeToString(h.Sum(nil))
	outKeys := map[string]bool{}
	for i := range entries {
		entries[i].Key = layout.CompactedKey(o.Day, setHash, i+1, len(chunks), o.Gzip)
		outKeys[entries[i].Key] = true
	}
	inputs := src.sums
	var removals []digest.Removed
	for k, sum := range inputs {
		if !outKeys[k] {
			removals = append(removals, digest.Removed{Key: k, SHA256: sum})
		}
	}
	slices.SortFunc(removals, func(a, b digest.Removed) int { return strings.Compare(a.Key, b.Key) })
	allPresent := true
	for _, e := range entries {
		if inputs[e.Key] != e.SHA256 {
			allPresent = false
		}
	}
	if allPresent && len(removals) == 0 {
		res.Unchanged = true
		log.Info("day already compacted; nothing to do", "day", o.Day, "objects", len(entries), "records", res.Kept)
		if o.Key == nil {
			return res, nil
		}
		return res, confirmDeletions(ctx, store, o, dayT, objs, listedBefore, removedBefore, confirmedBefore, &res)
	}

	// 3. The chain of this day's compaction digests.
	var chain *digest.Chain
	if o.Key != nil {
		chain, err = digest.OpenChain(ctx, store, o.Key, chainName(o.Day), o.Now(), dayT, nil)
		if err != nil {
			return res, err
		}
		chain.SetArchive(o.ArchiveID)
	} else {
		log.Warn("no --digest-key: the compacted objects are in no digest, so archiver verify will report them as unlisted")
	}
	writeDigest := func(removed []digest.Removed, deleted bool) error {
		if chain == nil {
			return nil
		}
		now := o.Now()
		key, err := chain.Write(ctx, digest.Payload{
			Kind: digest.KindCompaction, Day: o.Day, Start: digest.FormatTime(dayT), End: digest.FormatTime(now),
			Objects: entries, Removed: removed, Deleted: deleted, CreatedAt: digest.FormatTime(now),
		}, dayT)
		if err != nil {
			return err
		}
		res.DigestKeys = append(res.DigestKeys, key)
		return nil
	}
	listed := true
	for _, e := range entries {
		if listedBefore[e.Key].SHA256 != e.SHA256 {
			listed = false
		}
	}
	if !listed {
		if err := writeDigest(nil, false); err != nil {
			return res, err
		}
	}
	if err := step("digest"); err != nil {
		return res, err
	}

	// 4. Write, then read back and check.
	for i, e := range entries {
		if inputs[e.Key] == e.SHA256 {
			continue
		}
		body, err := src.encode(&enc, chunks[i], o.Gzip, nil)
		if err != nil {
			return res, err
		}
		if digest.Sum(body) != e.SHA256 {
			return res, fmt.Errorf("writing %s: its lines read differently the second time (an object of day %s changed during compaction?); nothing removed, rerun", e.Key, o.Day)
		}
		if err := store.Put(ctx, e.Key, body, layout.ContentType); err != nil {
			return res, fmt.Errorf("writing %s: %w", e.Key, err)
		}
		res.Written = append(res.Written, e.Key)
	}
	enc.Reset(false) // drop the last object's bytes before reading back
	if err := step("written"); err != nil {
		return res, err
	}
	for _, want := range entries {
		b, err := storage.ReadAll(ctx, store, want.Key)
		if err != nil {
			return res, fmt.Errorf("reading back %s: %w", want.Key, err)
		}
		e, err := digest.Describe(want.Key, b)
		if err != nil || e.SHA256 != want.SHA256 || e.Records != want.Records {
			return res, fmt.Errorf("reading back %s: it is not what was written (sha256 %s, %d records; want %s, %d records); originals kept", want.Key, e.SHA256, e.Records, want.SHA256, want.Records)
		}
	}
	if err := step("checked"); err != nil {
		return res, err
	}
	if !o.DeleteOriginals || len(removals) == 0 {
		log.Info("compacted", "day", o.Day, "inputs", res.Inputs, "records", res.Records, "kept", res.Kept, "objects", len(entries), "originals_kept", len(removals))
		return res, nil
	}

	// 5. Name the removals in a signed digest, then delete.
	covered := true
	for _, r := range removals {
		if removedBefore[r.Key] == "" {
			covered = false
		}
	}
	if !covered {
		if err := writeDigest(removals, false); err != nil {
			return res, err
		}
	}
	if err := step("removal-digest"); err != nil {
		return res, err
	}
	for _, r := range removals {
		if err := store.Delete(ctx, r.Key); err != nil {
			return res, fmt.Errorf("deleting original %s: %w (rerun to finish)", r.Key, err)
		}
		res.Deleted = append(res.Deleted, r.Key)
	}
	if err := step("deleted"); err != nil {
		return res, err
	}
	// 6. Confirm the deletion: an original that is back after this is reported as reappeared (a
	// rerun after a crash before this point writes it).
	if err := writeDigest(removals, true); err != nil {
		return res, err
	}
	log.Info("compacted", "day", o.Day, "inputs", res.Inputs, "records", res.Records, "kept", res.Kept, "objects", len(entries), "deleted", len(res.Deleted))
	return res, nil
}

// earlier reads this day's signed compaction digests: which objects they list
// and which originals they name as removed.
func earlier(ctx context.Context, store Store, o Options, dayT time.Time, listed map[string]digest.Entry, removed map[string]string, confirmed map[string]bool) error {
	objs, err := store.List(ctx, digest.InstancePrefix(dayT, chainName(o.Day)))
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("listing earlier compaction digests: %w", err)
	}
	pub := o.Key.Public().(ed25519.PublicKey)
	for _, ob := range objs {
		b, err := storage.ReadAll(ctx, store, ob.Key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", ob.Key, err)
		}
		p, err := digest.Decode(b, pub)
		if err != nil {
			continue // not trusted: its listings do not count
		}
		for _, e := range p.Objects {
			listed[e.Key] = e
		}
		for _, r := range p.Removed {
			removed[r.Key] = r.SHA256
			if p.Deleted {
				confirmed[r.Key] = true
			}
		}
	}
	return nil
}

// confirmDeletions signs the confirmation that the originals a compaction removed are deleted when
// a run stopped after deleting them but before confirming it (see step 6 of Compact).
func confirmDeletions(ctx context.Context, store Store, o Options, dayT time.Time, objs []storage.ObjectInfo, listed map[string]digest.Entry, removed map[string]string, confirmed map[string]bool, res *Result) error {
	if !o.DeleteOriginals {
		return nil
	}
	present := map[string]bool{}
	for _, ob := range objs {
		present[ob.Key] = true
	}
	var gone []digest.Removed
	for k, sum := range removed {
		if !confirmed[k] && !present[k] {
			gone = append(gone, digest.Removed{Key: k, SHA256: sum})
		}
	}
	if len(gone) == 0 {
		return nil
	}
	slices.SortFunc(gone, func(a, b digest.Removed) int { return strings.Compare(a.Key, b.Key) })
	var entries []digest.Entry
	for _, ob := range objs {
		if e, ok := listed[ob.Key]; ok && layout.IsCompactedKey(ob.Key) {
			entries = append(entries, e)
		}
	}
	chain, err := digest.OpenChain(ctx, store, o.Key, chainName(o.Day), o.Now(), dayT, nil)
	if err != nil {
		return err
	}
	chain.SetArchive(o.ArchiveID)
	now := o.Now()
	key, err := chain.Write(ctx, digest.Payload{
		Kind: digest.KindCompaction, Day: o.Day, Start: digest.FormatTime(dayT), End: digest.FormatTime(now),
		Objects: entries, Removed: gone, Deleted: true, CreatedAt: digest.FormatTime(now),
	}, dayT)
	if err != nil {
		return err
	}
	res.DigestKeys = append(res.DigestKeys, key)
	return nil
}

// alreadyCompacted tells, without decoding, whether the day holds exactly one complete set of
// compacted objects, each with the bytes a signed compaction digest lists (a rerun's common case).
// The objects' bytes were checked against their digests by checkDay just before.
func alreadyCompacted(objs []storage.ObjectInfo, listed map[string]digest.Entry) (n, records int, ok bool) {
	type set struct {
		hash  string
		parts int
		gz    bool
	}
	var first *set
	for _, ob := range objs {
		if isObj, _ := layout.IsObjectKey(ob.Key); !isObj {
			continue
		}
		// <day>/compacted-<hash>-<part>-of-<parts>: one set, all parts present.
		hash, _, parts, gz, isCompacted := layout.ParseCompactedKey(ob.Key)
		if !isCompacted {
			return 0, 0, false
		}
		if first == nil {
			first = &set{hash, parts, gz}
		} else if *first != (set{hash, parts, gz}) {
			return 0, 0, false
		}
		e, listedOK := listed[ob.Key]
		if !listedOK || e.Size != ob.Size {
			return 0, 0, false
		}
		n++
		records += e.Records
	}
	return n, records, first != nil && first.parts == n
}

// checkDay verifies the day against its digests and refuses on any problem but reappeared
// originals (a rerun deletes them again): merging over a missing object, a gap, a broken chain or
// uncovered hours would sign the day as whole after its evidence was removed, and the originals
// (with the records that are gone) could then be deleted.
func checkDay(ctx context.Context, store Store, o Options) error {
	ps, sum, err := verify.Verify(ctx, store, verify.Options{From: o.Day, PublicKey: o.Key.Public().(ed25519.PublicKey), Now: o.Now, ArchiveID: o.ArchiveID})
	if err != nil {
		return fmt.Errorf("checking day %s before compacting it: %w", o.Day, err)
	}
	if sum.Pending > 0 {
		// Not provable yet: merging them would sign whatever they hold (a planted object too).
		return fmt.Errorf("day %s has %d objects stored after their running instance's last digest; nothing was changed: compaction merges only what the digests vouch for, so run it again after that instance's next hourly digest",
			o.Day, sum.Pending)
	}
	var bad []string
	objectsOnly := true
	for _, p := range ps {
		switch p.Kind {
		case verify.Reappeared:
			continue
		case verify.Altered, verify.Unlisted:
		default:
			objectsOnly = false
		}
		bad = append(bad, p.Kind+" "+p.Key)
	}
	if len(bad) == 0 {
		return nil
	}
	more := ""
	if len(bad) > 3 {
		more, bad = fmt.Sprintf(" and %d more", len(bad)-3), bad[:3]
	}
	fix := fmt.Sprintf("move the objects in question out of dt=%s/ to compact the rest", o.Day)
	if !objectsOnly {
		fix = "its digests no longer vouch for the whole day (missing objects, gaps, broken chains, misplaced or unverifiable digests, uncovered hours): find out what happened before anything is merged or deleted"
	}
	return fmt.Errorf("day %s does not verify (%s%s); nothing was changed: compaction merges only what the digests vouch for (run archiver verify --from %s for the full report; %s)",
		o.Day, strings.Join(bad, ", "), more, o.Day, fix)
}

func chainName(day string) string { return "compact-" + day }
