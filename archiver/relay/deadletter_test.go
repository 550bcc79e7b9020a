package relay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
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
	d.flush(context.Background())

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
