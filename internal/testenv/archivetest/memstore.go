package archivetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// MemStore is an in-memory storage.Putter for narrow unit tests (the integration tests use a real
// VersityGW). Put is a conditional create like the real stores'. Set Fail and Gate before the
// store is used: Fail makes the next n Puts fail; Gate, when set, blocks each Put until it
// receives (or ctx ends). Began receives once at the start of every Put.
type MemStore struct {
	Fail  int
	Gate  chan struct{}
	Began chan struct{}

	mu   sync.Mutex
	objs map[string][]byte
	puts int
}

// NewMemStore returns an empty store whose Began holds up to 100 signals.
func NewMemStore() *MemStore {
	return &MemStore{objs: map[string][]byte{}, Began: make(chan struct{}, 100)}
}

// Put implements storage.Putter.
func (m *MemStore) Put(ctx context.Context, key string, body []byte, _ string) error {
	m.Began <- struct{}{}
	if m.Gate != nil {
		select {
		case <-m.Gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.Fail > 0 {
		m.Fail--
		return errors.New("injected failure")
	}
	if old, ok := m.objs[key]; ok {
		if string(old) == string(body) {
			return nil
		}
		return fmt.Errorf("put %s: %w", key, storage.ErrExists)
	}
	m.objs[key] = append([]byte(nil), body...)
	return nil
}

// Puts is the number of Put calls so far, failed ones included.
func (m *MemStore) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// Keys returns the stored keys, sorted.
func (m *MemStore) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.objs))
	for k := range m.objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Object returns the bytes stored under key (nil when none).
func (m *MemStore) Object(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs[key]
}

// SetObject stores body under key, as another writer would have.
func (m *MemStore) SetObject(key string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = append([]byte(nil), body...)
}
