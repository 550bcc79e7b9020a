package digest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// ChainStore is what a chain needs from the store: write digests, find the last one.
type ChainStore interface {
	storage.Putter
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	List(ctx context.Context, prefix string) ([]storage.ObjectInfo, error)
}

// RetainFunc applies retention (S3 Object Lock) to a key just written; nil when not used.
type RetainFunc func(ctx context.Context, key string) error

// lookBackDays bounds the search for a chain's last digest: an instance idle for longer starts a
// new chain (a verifier sees a first digest with no previous link).
const lookBackDays = 8

// Chain writes the digests of one chain (an archiver instance, or the compactions of one day).
type Chain struct {
	store    ChainStore
	key      ed25519.PrivateKey
	instance string
	retain   RetainFunc
	archive  string   // Payload.Archive
	journal  *Journal // nil: no local record (store mode, compaction)
	witness  bool     // list the other chains' heads in every digest

	mu   sync.Mutex
	prev *Link
	last *Payload // the previous digest's payload (nil for a new chain)
	seq  uint64
	// unsent is a digest signed but not confirmed stored (the Put failed, perhaps after the store
	// kept it). It is retried as it is before anything else: a second digest with its sequence
	// number would fork the chain.
	unsent *sealed
}

type sealed struct {
	key     string
	body    []byte
	payload Payload
}

// ErrUnsent is wrapped by Write when the digest was signed but could not be stored: it is kept
// and stored, unchanged, before the chain's next digest, so the entries in it are not lost and
// must not be listed again.
var ErrUnsent = errors.New("digest signed but not yet stored; it is retried before the next one")

// OpenChain continues instance's chain: it looks for the instance's latest digest (under the UTC
// days from now back lookBackDays; only under dateDir when dateDir is not zero, for compaction
// chains) and links the next digest to it.
func OpenChain(ctx context.Context, store ChainStore, key ed25519.PrivateKey, instance string, now, dateDir time.Time, retain RetainFunc) (*Chain, error) {
	c := &Chain{store: store, key: key, instance: instance, retain: retain}
	if s, ok := store.(storage.Store); ok {
		c.archive = storage.Identity(s)
	}
	days := []time.Time{dateDir}
	if dateDir.IsZero() {
		days = days[:0]
		for i := 0; i < lookBackDays; i++ {
			days = append(days, now.AddDate(0, 0, -i))
		}
	}
	for _, d := range days {
		objs, err := store.List(ctx, InstancePrefix(d, instance))
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("looking for the last digest of %s: %w", instance, err)
		}
		var best *Payload
		var bestKey, bestSum string
		for _, o := range objs {
			if !IsKey(o.Key) {
				continue
			}
			b, err := storage.ReadAll(ctx, store, o.Key)
			if err != nil {
				return nil, fmt.Errorf("reading digest %s: %w", o.Key, err)
			}
			p, err := Decode(b, key.Public().(ed25519.PublicKey))
			if err != nil {
				// Not ours or damaged: never chain onto it; a verifier reports it.
				continue
			}
			if p.Instance == instance && (best == nil || p.Seq > best.Seq) {
				best, bestKey, bestSum = &p, o.Key, Sum(b)
			}
		}
		if best != nil {
			c.prev, c.seq, c.last = &Link{Key: bestKey, SHA256: bestSum}, best.Seq, best
			return c, nil
		}
	}
	return c, nil
}

// SetArchive names the archive the digests are written for (--archive-id); the default is the
// store's identity (storage.Identity).
func (c *Chain) SetArchive(id string) {
	if id != "" {
		c.archive = id
	}
}

// Witness makes every digest list the heads of the other archiver chains it sees in the store.
func (c *Chain) Witness() { c.witness = true }

// ErrHeadGone is returned (wrapped) by UseJournal when the last digest the instance remembers
// storing is not in the store with the bytes it wrote.
var ErrHeadGone = errors.New("the last digest this instance stored is gone from the store")

// UseJournal makes j the chain's local record: the head it remembers is the chain's head unless
// the store holds a later digest of the chain (stored just before a crash). When the remembered
// digest is gone or changed, the chain still continues from it, so the next digest links to the
// missing one and verify reports the chain broken instead of the hole being sealed over; the
// returned error wraps ErrHeadGone and the chain is usable.
func (c *Chain) UseJournal(ctx context.Context, j *Journal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.journal = j
	h, ok := j.Head()
	if !ok || h.Seq < c.seq {
		return nil
	}
	if h.Seq == c.seq && c.prev != nil && c.prev.Key == h.Key && c.prev.SHA256 == h.SHA256 {
		return nil
	}
	head := Link{Key: h.Key, SHA256: h.SHA256}
	found, b, err := c.headState(ctx, head)
	if err != nil {
		return fmt.Errorf("reading the last digest this instance stored, %s: %w", h.Key, err)
	}
	c.prev, c.seq = &head, h.Seq
	if found == "" {
		// There, but not found by OpenChain (filed under a day it did not look at).
		if p, err := Decode(b, c.key.Public().(ed25519.PublicKey)); err == nil {
			c.last = &p
		}
		return nil
	}
	c.last = nil
	return fmt.Errorf("%w: %s (#%d, %s) is %s; the next digest links to it, so archiver verify reports the chain broken there (restore it from a backup if you have one)", ErrHeadGone, h.Key, h.Seq, h.Kind, found)
}

// headState reads the chain head head names and says whether it is in the store with the bytes
// head links to: "" when it is (b holds them), else "missing" or "changed (sha256 …, written as
// …)". err is any other read error (the state is then unknown).
func (c *Chain) headState(ctx context.Context, head Link) (found string, b []byte, err error) {
	b, err = storage.ReadAll(ctx, c.store, head.Key)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		return "missing", nil, nil
	case err != nil:
		return "", nil, err
	case Sum(b) != head.SHA256:
		return "changed (sha256 " + Sum(b)[:16] + ", written as " + head.SHA256[:min(16, len(head.SHA256))] + ")", nil, nil
	}
	return "", b, nil
}

// Previous is the link the next digest will carry (nil for a new chain).
func (c *Chain) Previous() *Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prev == nil {
		return nil
	}
	l := *c.prev
	return &l
}

// Write signs and stores the next digest of the chain, filed under dateDir's UTC day, and returns
// its key. p's Version, Instance, Seq, Previous and KeyID are filled in here.
func (c *Chain) Write(ctx context.Context, p Payload, dateDir time.Time) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unsent != nil {
		if err := c.put(ctx, c.unsent); err != nil {
			return "", err
		}
		if err := c.advance(c.unsent); err != nil {
			return "", err
		}
	}
	p.Instance, p.Seq, p.Previous = c.instance, c.seq+1, c.prev
	end, err := ParseTime(p.End)
	if err != nil {
		return "", fmt.Errorf("digest end %q: %w", p.End, err)
	}
	key := Key(dateDir, c.instance, end, p.Seq, p.Kind)
	p.Archive, p.Key = c.archive, key
	if c.witness {
		if p.Witness, err = c.heads(ctx, end); err != nil {
			return "", err
		}
	}
	b, err := Encode(p, c.key)
	if err != nil {
		return "", err
	}
	d := &sealed{key: key, body: b, payload: p}
	if err := c.put(ctx, d); err != nil {
		c.unsent = d
		return "", fmt.Errorf("%w: %w", ErrUnsent, err)
	}
	if err := c.advance(d); err != nil {
		return d.key, err
	}
	return d.key, nil
}

// put stores a sealed digest (a conditional create: a retry after a lost answer finds its own
// bytes and succeeds) and applies retention.
func (c *Chain) put(ctx context.Context, d *sealed) error {
	if err := c.store.Put(ctx, d.key, d.body, ContentType); err != nil {
		return fmt.Errorf("writing digest %s: %w", d.key, err)
	}
	if c.retain != nil {
		if err := c.retain(ctx, d.key); err != nil {
			return fmt.Errorf("setting retention on digest %s: %w", d.key, err)
		}
	}
	return nil
}

func (c *Chain) advance(d *sealed) error {
	p := d.payload
	c.prev, c.seq, c.last, c.unsent = &Link{Key: d.key, SHA256: Sum(d.body)}, p.Seq, &p, nil
	if c.journal == nil {
		return nil
	}
	return c.journal.Stored(JournalHead{Key: d.key, SHA256: c.prev.SHA256, Seq: p.Seq, Kind: p.Kind, End: p.End}, p.Objects)
}

// heads lists the newest valid digest of every other archiver chain filed under the UTC day of
// end or the day before (compaction chains are not witnessed: they are checked by what they list).
func (c *Chain) heads(ctx context.Context, end time.Time) ([]Head, error) {
	type cand struct {
		key string
		kp  KeyParts
	}
	byInst := map[string][]cand{}
	for _, d := range []time.Time{end.AddDate(0, 0, -1), end} {
		objs, err := c.store.List(ctx, DayPrefix(d))
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("listing the other instances' digests: %w", err)
		}
		for _, o := range objs {
			kp, ok := ParseKey(o.Key)
			if !ok || kp.Instance == c.instance || kp.Kind == KindCompaction || strings.HasPrefix(kp.Instance, "compact-") {
				continue
			}
			byInst[kp.Instance] = append(byInst[kp.Instance], cand{o.Key, kp})
		}
	}
	pub := c.key.Public().(ed25519.PublicKey)
	var out []Head
	for inst, cs := range byInst {
		sort.Slice(cs, func(i, j int) bool { return cs[i].kp.Seq > cs[j].kp.Seq })
		for _, cd := range cs {
			b, err := storage.ReadAll(ctx, c.store, cd.key)
			if err != nil {
				continue // deleted while we looked: take the one before
			}
			p, err := Decode(b, pub)
			if err != nil || p.Instance != inst || p.Seq != cd.kp.Seq || (p.Bound() && p.Key != cd.key) {
				continue // not a digest of that chain at its place: never vouch for it
			}
			out = append(out, Head{Instance: inst, Seq: p.Seq, Key: cd.key, SHA256: Sum(b)})
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out, nil
}

// Recorder is a storage.Putter decorator: every successful Put is described (Describe) and kept
// until the next digest. With a RetainFunc it also applies retention to every object it stores.
type Recorder struct {
	next    storage.Putter
	retain  RetainFunc
	log     *slog.Logger
	record  bool // false: retention only (no digest will ever Take what is recorded)
	journal *Journal

	mu      sync.Mutex
	pending []Entry
	seen    map[string]struct{} // keys pending, so a retried Put is listed once
}

// NewRecorder wraps next.
func NewRecorder(next storage.Putter, retain RetainFunc, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{next: next, retain: retain, log: log, record: true, seen: map[string]struct{}{}}
}

// NewRetainer wraps next to apply retention to every object it stores, recording nothing: for
// --object-lock without digests, where nothing would ever Take the records.
func NewRetainer(next storage.Putter, retain RetainFunc) *Recorder {
	return &Recorder{next: next, retain: retain, log: slog.New(slog.DiscardHandler)}
}

// UseJournal makes Put record every object's hash in j before storing it (see Journal).
func (r *Recorder) UseJournal(j *Journal) { r.journal = j }

// Put stores through the wrapped Putter and records the object once it is stored. A retention
// failure is returned as an error, so the caller's retry (a no-op Put of the same bytes) retries
// the retention too.
func (r *Recorder) Put(ctx context.Context, key string, body []byte, contentType string) error {
	if r.journal != nil {
		if err := r.journal.Intend(key, Sum(body)); err != nil {
			return err
		}
	}
	if err := r.next.Put(ctx, key, body, contentType); err != nil {
		return err
	}
	if r.retain != nil {
		if err := r.retain(ctx, key); err != nil {
			return fmt.Errorf("stored %s but could not set its retention: %w", key, err)
		}
	}
	if !r.record {
		return nil
	}
	e, err := Describe(key, body)
	if err != nil {
		// Still listed by size and hash: the digest proves the bytes even if they are not records.
		r.log.Warn("stored object does not parse as its name says; listed in the digest by size and hash only", "key", key, "error", err)
	}
	r.mu.Lock()
	if _, dup := r.seen[key]; !dup {
		r.seen[key] = struct{}{}
		r.pending = append(r.pending, e)
	}
	r.mu.Unlock()
	return nil
}

// Take returns and clears the objects recorded since the last Take.
func (r *Recorder) Take() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = nil
	r.seen = map[string]struct{}{}
	return out
}

// add records entries not recorded yet.
func (r *Recorder) add(entries []Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		if _, dup := r.seen[e.Key]; !dup {
			r.seen[e.Key] = struct{}{}
			r.pending = append(r.pending, e)
		}
	}
}

// Restore puts entries back in front of the pending ones (a digest write failed).
func (r *Recorder) Restore(entries []Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range entries {
		r.seen[e.Key] = struct{}{}
	}
	r.pending = append(entries, r.pending...)
}

// Writer writes an instance's digests: one per Interval (aligned to the clock, hourly by default)
// whether or not anything was stored, and one at Close.
type Writer struct {
	Recorder *Recorder
	Chain    *Chain
	Interval time.Duration    // 0 => time.Hour
	Now      func() time.Time // nil => time.Now
	Logger   *slog.Logger
	// OnFlush, when set, is told the outcome of every interval and shutdown digest: nil only once
	// the digest is stored with its retention and recorded in the journal (metrics count here, not
	// at the store's Put, which can succeed for a digest that still fails).
	OnFlush func(err error)

	mu          sync.Mutex
	start       time.Time
	recoverFrom time.Time // set by Recover: the first span starts here
	stop        context.CancelFunc
	done        chan struct{}
}

func (w *Writer) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Writer) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Recover runs before Start. When a previous process of this instance crashed (its chain does not
// end with a shutdown digest, or objects it recorded in its journal are in no digest), it lists
// those objects (only the ones whose bytes still have the hash the journal recorded before they
// were written: anything else, planted or edited in the bucket, stays unlisted for verify to
// report) and lets the first digest's span begin where the last digest ended, so the crash leaves
// neither unlisted objects nor a gap. Without a journal (store mode, where every process starts a
// new chain) nothing is listed. A chain whose last digest is gone (UseJournal) is not recovered
// over: the next digest starts now.
func (w *Writer) Recover(ctx context.Context) error {
	c := w.Chain
	c.mu.Lock()
	last, j := c.last, c.journal
	c.mu.Unlock()
	var intents map[string]string
	if j != nil {
		intents = j.Intents()
	}
	if last == nil && len(intents) == 0 {
		return nil
	}
	now := w.now()
	pub := c.key.Public().(ed25519.PublicKey)
	var end time.Time
	listed := map[string]bool{}
	if last != nil {
		var err error
		if end, err = ParseTime(last.End); err != nil {
			return nil // not ours to repair; verify reports it
		}
		// Keys already listed: the instance's digests filed since the day before the last one.
		for d := end.AddDate(0, 0, -1); !d.After(now.AddDate(0, 0, 1)); d = d.AddDate(0, 0, 1) {
			objs, err := c.store.List(ctx, InstancePrefix(d, c.instance))
			if err != nil && !errors.Is(err, storage.ErrNotExist) {
				return fmt.Errorf("recovering after a crash: %w", err)
			}
			for _, o := range objs {
				b, err := storage.ReadAll(ctx, c.store, o.Key)
				if err != nil {
					return fmt.Errorf("recovering after a crash: %w", err)
				}
				if p, err := Decode(b, pub); err == nil {
					for _, e := range p.Objects {
						listed[e.Key] = true
					}
				}
			}
		}
	}
	keys := make([]string, 0, len(intents))
	for k := range intents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var found []Entry
	var resolved []string // recorded objects no digest will list: forgotten below
	for _, k := range keys {
		if listed[k] {
			resolved = append(resolved, k)
			continue
		}
		b, err := storage.ReadAll(ctx, c.store, k)
		if errors.Is(err, storage.ErrNotExist) {
			resolved = append(resolved, k) // the Put never happened
			continue
		}
		if err != nil {
			return fmt.Errorf("recovering after a crash: %w", err)
		}
		if Sum(b) != intents[k] {
			w.logger().Warn("an object under a name this instance recorded has other bytes than it recorded; left out of the digest (archiver verify reports it unlisted)", "key", k)
			resolved = append(resolved, k)
			continue
		}
		e, _ := Describe(k, b)
		found = append(found, e)
	}
	if err := j.Forget(resolved); err != nil {
		return fmt.Errorf("recovering after a crash: %w", err)
	}
	if last != nil && last.Kind == KindShutdown && len(found) == 0 {
		return nil // a clean restart
	}
	w.Recorder.add(found)
	if last == nil {
		if len(found) > 0 {
			w.logger().Warn("listing objects this instance stored that no digest lists", "objects_found", len(found))
		}
		return nil
	}
	w.mu.Lock()
	w.recoverFrom = end
	w.mu.Unlock()
	w.logger().Warn("the previous process of this instance did not shut down cleanly; the next digest covers the time since its last digest and lists the objects it stored after it",
		"last_digest", c.prev.Key, "objects_found", len(found))
	return nil
}

// Start begins the span of the first digest now and writes digests in the background until Close.
func (w *Writer) Start() {
	w.mu.Lock()
	w.start = w.now()
	if !w.recoverFrom.IsZero() {
		w.start = w.recoverFrom
	}
	w.mu.Unlock()
	w.background()
}

// StartNewChain is Start for a chain that begins with this process (it has no previous digest:
// store mode starts one at every start, spool mode on a spool whose journal remembers none and
// whose instance has no digest in the store): it first writes a KindStart digest with an empty span
// and no objects, which witnesses the other chains' heads at once. Otherwise the chain's first
// digest, up to an Interval later, would be the first to witness the previous process's chain (or,
// for a spool's first chain, the other instances'), and that chain wiped in between would go
// unnoticed (verify would take the new chain for the archive's beginning). Objects Recover found
// are left to the next digest. With a journal the start digest is recorded as the chain's head like
// any other, so a restart continues the chain (after a crash, from the start digest's end). A
// failed write is logged and reported to OnFlush like an hourly one: a start digest signed but not
// confirmed stored is stored unchanged before the next digest; one never signed (the other chains
// could not be listed) is skipped, and the next digest is the chain's first. A chain that continues
// (Previous is not nil) gets no start digest: StartNewChain is then Start.
func (w *Writer) StartNewChain(ctx context.Context) {
	if w.Chain.Previous() != nil {
		w.Start()
		return
	}
	w.mu.Lock()
	w.start = w.now()
	err := w.flush(ctx, KindStart, w.start)
	w.mu.Unlock()
	if err != nil {
		w.logger().Error("writing the start digest failed; the chain's next digest witnesses the other chains instead", "error", err)
	}
	w.background()
}

func (w *Writer) background() {
	ctx, cancel := context.WithCancel(context.Background())
	w.stop, w.done = cancel, make(chan struct{})
	go w.run(ctx)
}

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	interval := w.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	for {
		now := w.now()
		wait := now.Truncate(interval).Add(interval).Sub(now)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A failed write keeps the entries; the next tick (or Close) writes them. Close does not
		// cancel a write under way (it waits for it): a Put cut off after the store kept the
		// object would leave a digest the chain does not know about.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		err := w.Flush(fctx, KindHourly)
		if err != nil && ctx.Err() == nil {
			w.logger().Error("writing the digest failed; its objects go into the next digest", "error", err)
		}
		cancel()
	}
}

// Flush writes one digest of kind for everything recorded since the previous one.
func (w *Writer) Flush(ctx context.Context, kind string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flush(ctx, kind, w.now())
}

// flush writes the digest of kind whose span ends at end and reports the outcome to OnFlush; w.mu
// is held.
func (w *Writer) flush(ctx context.Context, kind string, end time.Time) (err error) {
	defer func() { w.flushed(err) }()
	w.checkHead(ctx)
	var entries []Entry
	if kind != KindStart { // a start digest lists nothing: its span is empty
		entries = w.Recorder.Take()
	}
	p := Payload{Kind: kind, Start: FormatTime(w.start), End: FormatTime(end), Objects: entries, CreatedAt: FormatTime(end)}
	key, err := w.Chain.Write(ctx, p, end)
	if errors.Is(err, ErrUnsent) {
		// The signed digest holds the entries and covers the span up to end; it is stored
		// before the next one.
		w.start = end
		return err
	}
	if err != nil {
		w.Recorder.Restore(entries)
		return err
	}
	w.start = end
	w.logger().Debug("wrote digest", "key", key, "objects", len(entries))
	return nil
}

// checkHead says in an ERROR log when the digest the chain continues from is gone from the store
// or changed (while this process ran): the next digest still links to it, so verify reports the
// chain broken there. One read per digest; a failed read says nothing (the write that follows
// reports a store that is down).
func (w *Writer) checkHead(ctx context.Context) {
	prev := w.Chain.Previous()
	if prev == nil {
		return
	}
	if found, _, err := w.Chain.headState(ctx, *prev); err == nil && found != "" {
		w.logger().Error("the last digest of this instance is not in the store as it was written (deleted or replaced); the next digest links to it, so archiver verify reports the chain broken there", "digest", prev.Key, "found", found)
	}
}

// Close stops the hourly writes and writes the shutdown digest (call it after the last object was
// stored).
func (w *Writer) Close(ctx context.Context) error {
	if w.stop != nil {
		w.stop()
		<-w.done
	}
	err := w.Flush(ctx, KindShutdown)
	if err != nil {
		return fmt.Errorf("writing the shutdown digest: %w", err)
	}
	return nil
}

func (w *Writer) flushed(err error) {
	if w.OnFlush != nil {
		w.OnFlush(err)
	}
}
