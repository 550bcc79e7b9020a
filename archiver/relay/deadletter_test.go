package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/internal/backoff"
)

// mapStore is a conditional-create store: the same bytes again are done, other bytes ErrExists.
type mapStore struct {
	mu   sync.Mutex
	objs map[string][]byte
}

func (s *mapStore) Put(_ context.Context, key string, body []byte, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.objs[key]; ok {
		if bytes.Equal(old, body) {
			return nil
		}
		return storage.ErrExists
	}
	s.objs[key] = bytes.Clone(body)
	return nil
}

// Dead letters whose object name already holds other bytes (decided again after a crash) are
// stored under the conflict name, never dropped as if stored.
func TestDeadLettersConflictGetFreshName(t *testing.T) {
	t.Parallel()
	st := &mapStore{objs: map[string][]byte{}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Relay{o: Options{Dir: t.TempDir(), Store: st, Instance: "i1", Now: func() time.Time { return now }}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.m = newMetrics(nil, r)
	key := layout.DeadLetterKey("2026-01-02", "biz", "i1", 7, 42)
	st.objs[key] = []byte("earlier run's dead letters\n")

	d := newDeadLetters(r, "biz")
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 7, 42, "rejected", 400, "bad", 1)
	if err := d.flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	if string(st.objs[key]) != "earlier run's dead letters\n" {
		t.Fatalf("%s overwritten: %q", key, st.objs[key])
	}
	if len(st.objs) != 2 {
		t.Fatalf("objects %d, want the earlier one and the conflict-named one", len(st.objs))
	}
	for k, b := range st.objs {
		if k != key && (k == "" || !bytes.Contains(b, []byte(`"event":{"a":1}`))) {
			t.Errorf("%s holds %s, want the dead letter", k, b)
		}
	}
}

// The cursor never passes a dead letter that is not on disk: while the local file cannot be
// written, persist leaves the cursor where it was; once it can, both are written.
func TestPersistFlushesDeadLettersFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := &Relay{o: Options{Dir: dir, Instance: "i1", Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.m = newMetrics(nil, r)
	w := &worker{r: r, d: Destination{Name: "biz"}, log: r.log, pos: &position{}, ctx: context.Background(), dl: newDeadLetters(r, "biz")}
	local := filepath.Join(dir, "biz", "deadletters.jsonl")
	if err := os.MkdirAll(local, 0o700); err != nil { // a directory where the file goes: writes fail
		t.Fatal(err)
	}
	w.dl.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 1, 0, ReasonRejected, 400, "bad", 1)
	w.advance(100)
	w.persist(true)
	if _, err := os.Stat(r.cursorPath("biz")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cursor written past a dead letter that is not on disk (stat: %v)", err)
	}
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	w.persist(true)
	b, err := os.ReadFile(local)
	if err != nil || !bytes.Contains(b, []byte(`"event":{"a":1}`)) {
		t.Fatalf("local dead letters: %v %q", err, b)
	}
	if p, ok, err := loadCursor(r.cursorPath("biz")); err != nil || !ok || p.off != 100 {
		t.Fatalf("cursor after the dead letters were written: %v %v %v", p, ok, err)
	}
}

// spool_full dead letters are already archived: the local file (on the spool's disk, outside its
// budget) gets a small reference per event, not the line; the store object keeps the full lines.
// Other reasons keep the full line locally.
func TestSpoolFullDeadLettersAreReferencesLocally(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := &mapStore{objs: map[string][]byte{}}
	r := &Relay{o: Options{Dir: dir, Store: st, Instance: "i1", Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r.m = newMetrics(nil, r)
	const n = 200
	big := `{"pad":"` + strings.Repeat("x", 4096) + `"}`
	d := newDeadLetters(r, "biz")
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 7, 0, ReasonRejected, 400, "bad", 1)
	for i := range n {
		rec := spool.Record{Day: "2026-01-02", Line: []byte(big)}
		rec.ID[0], rec.ID[15] = byte(i), 0xab
		d.add(rec, 7, 0, ReasonSpoolFull, 0, "the spool needed the room", 0)
	}
	if err := d.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(filepath.Join(dir, "biz", deadLettersFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(local) > n*300+len(big) {
		t.Errorf("local dead letters %d bytes for %d spool_full events of %d bytes: want small references", len(local), n, len(big))
	}
	lines := bytes.Split(bytes.TrimSpace(local), []byte("\n"))
	if len(lines) != n+1 {
		t.Fatalf("local lines %d, want %d", len(lines), n+1)
	}
	var ref map[string]any
	if err := json.Unmarshal(lines[n], &ref); err != nil {
		t.Fatal(err)
	}
	if ref["reason"] != ReasonSpoolFull || ref["day"] != "2026-01-02" || ref["event_id"] != "c7"+strings.Repeat("0", 28)+"ab" || ref["event"] != nil {
		t.Errorf("spool_full reference: %s", lines[n])
	}
	if !bytes.Contains(lines[0], []byte(`"reason":"rejected","status":400,"error":"bad"`)) || !bytes.HasSuffix(lines[0], []byte(`"event":{"a":1}}`)) {
		t.Errorf("rejected dead letter lost its line locally: %s", lines[0])
	}
	obj := st.objs[layout.DeadLetterKey("2026-01-02", "biz", "i1", 7, 0)]
	if c := bytes.Count(obj, []byte(big)); c != n {
		t.Errorf("store object holds %d full spool_full lines, want %d", c, n)
	}
}

// failingStore fails its first fails Puts, then stores.
type failingStore struct {
	mapStore
	fails int
}

func (s *failingStore) Put(ctx context.Context, key string, body []byte, ct string) error {
	s.mu.Lock()
	if s.fails > 0 {
		s.fails--
		s.mu.Unlock()
		return errors.New("store down")
	}
	s.mu.Unlock()
	return s.mapStore.Put(ctx, key, body, ct)
}

// A dead-letter object whose upload failed all its tries is kept as a pending upload and stored
// by a later pass (the background retry), which removes it; a pass while the store still fails
// keeps it.
func TestFailedDeadLetterUploadIsRetried(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := &failingStore{mapStore: mapStore{objs: map[string][]byte{}}, fails: 4}
	r := &Relay{o: Options{Dir: dir, Store: st, Instance: "i1", Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		storeBackoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}}
	r.m = newMetrics(nil, r)
	d := newDeadLetters(r, "biz")
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 7, 42, ReasonSpoolFull, 0, "full", 0)
	if err := d.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := layout.DeadLetterKey("2026-01-02", "biz", "i1", 7, 42)
	pending := filepath.Join(dir, "biz", pendingDir, filepath.Base(key))
	if len(st.objs) != 0 {
		t.Fatalf("stored while the store fails: %v", st.objs)
	}
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("no pending upload after the store failed: %v", err)
	}
	if err := r.uploadPending(context.Background()); err == nil {
		t.Fatal("a pass while the store fails reported success")
	}
	if _, err := os.Stat(pending); err != nil {
		t.Fatalf("pending upload dropped while the store fails: %v", err)
	}
	if err := r.uploadPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st.objs[key], []byte(`"event":{"a":1}`)) {
		t.Errorf("%s after the retry: %q, want the full dead letter", key, st.objs[key])
	}
	if _, err := os.Stat(pending); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending upload kept after it was stored: %v", err)
	}
}

// When the local dead-letter file cannot be written (the spool's disk full, say), the store still
// gets the dead letters, flush reports the local error, and the local lines stay collected and
// are written by the next flush, without storing the same letters a second time. When the store
// and the pending upload fail as well, the full lines stay collected for the store too.
func TestDeadLettersLocalWriteFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := &failingStore{mapStore: mapStore{objs: map[string][]byte{}}}
	r := &Relay{o: Options{Dir: dir, Store: st, Instance: "i1", Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		storeBackoff: backoff.Policy{Initial: time.Millisecond, Max: time.Millisecond}}
	r.m = newMetrics(nil, r)
	local := filepath.Join(dir, "biz", deadLettersFile)
	if err := os.MkdirAll(local, 0o700); err != nil { // a directory where the file goes: writes fail, even as root
		t.Fatal(err)
	}
	d := newDeadLetters(r, "biz")
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 7, 42, ReasonSpoolFull, 0, "full", 0)
	if err := d.flush(context.Background()); err == nil {
		t.Fatal("flush reported success while the local file cannot be written")
	}
	key := layout.DeadLetterKey("2026-01-02", "biz", "i1", 7, 42)
	if !bytes.Contains(st.objs[key], []byte(`"event":{"a":1}`)) {
		t.Fatalf("store after a failed local write: %q, want the dead letter", st.objs)
	}

	// The store and the pending upload fail too: nothing of the second letter is dropped.
	pending := filepath.Join(dir, "biz", pendingDir)
	if err := os.WriteFile(pending, nil, 0o600); err != nil { // a file where the pending directory goes
		t.Fatal(err)
	}
	st.mu.Lock()
	st.fails = 1 << 20
	st.mu.Unlock()
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"b":2}`)}, 8, 0, ReasonRejected, 400, "bad", 1)
	if err := d.flush(context.Background()); err == nil {
		t.Fatal("flush reported success while nothing could be written")
	}
	if len(st.objs) != 1 {
		t.Fatalf("objects %d while the store fails, want 1", len(st.objs))
	}

	st.mu.Lock()
	st.fails = 0
	st.mu.Unlock()
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	if err := d.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) != 2 || !bytes.Contains(lines[0], []byte(`"event_id":`)) || !bytes.Contains(lines[1], []byte(`"event":{"b":2}`)) {
		t.Fatalf("local dead letters after the retry:\n%s", b)
	}
	if len(st.objs) != 2 || !bytes.Contains(st.objs[layout.DeadLetterKey("2026-01-02", "biz", "i1", 8, 0)], []byte(`"event":{"b":2}`)) {
		t.Fatalf("store after the retry: %q, want the first object once and the second", st.objs)
	}
	if err := d.flush(context.Background()); err != nil || len(d.ls)+len(d.local) != 0 {
		t.Fatalf("letters still collected after they were written: %v %d %d", err, len(d.ls), len(d.local))
	}
}

// While the local file, the store and the pending upload all fail, a flush at every persist does
// not retry the store each time: the next round waits; a successful local write stores at once.
func TestDeadLettersStoreRoundsWaitWhileNothingCanBeWritten(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := &failingStore{mapStore: mapStore{objs: map[string][]byte{}}, fails: 3} // one round of tries
	r := &Relay{o: Options{Dir: dir, Store: st, Instance: "i1", Now: time.Now}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		storeBackoff: backoff.Policy{Initial: time.Millisecond, Max: time.Hour}}
	r.m = newMetrics(nil, r)
	local := filepath.Join(dir, "biz", deadLettersFile)
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "biz", pendingDir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDeadLetters(r, "biz")
	d.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 7, 42, ReasonRejected, 400, "bad", 1)
	for range 2 {
		if err := d.flush(context.Background()); err == nil {
			t.Fatal("flush reported success while nothing could be written")
		}
	}
	if len(st.objs) != 0 || len(d.ls) != 1 {
		t.Fatalf("the store was tried again before the next round: objects %d, collected %d", len(st.objs), len(d.ls))
	}
	if err := os.Remove(local); err != nil {
		t.Fatal(err)
	}
	if err := d.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(st.objs) != 1 || len(d.ls)+len(d.local) != 0 {
		t.Fatalf("after the local write: objects %d, collected %d %d", len(st.objs), len(d.ls), len(d.local))
	}
}
