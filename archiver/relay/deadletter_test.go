package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
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
	w.dl.add(spool.Record{Day: "2026-01-02", Line: []byte(`{"a":1}`)}, 1, 0, ReasonSpoolFull, 0, "full", 0)
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
