package digest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// JournalFile is the journal's name inside the spool directory.
const JournalFile = "digest.journal"

// Journal is an instance's durable local record (next to its spool) of what it wrote itself: the
// hash of every object before it is stored, until a digest lists it, and the last digest it
// stored. At start, recovery signs only objects whose bytes match a recorded hash (never whatever
// lies in the bucket under the instance's name), and a chain whose remembered last digest is gone
// is not continued as if nothing happened.
//
// The file is JSON Lines: {"intent":{"key":..,"sha256":..}} appended (and fdatasync'd) before
// each Put, and rewritten whole, starting with {"head":{..}}, after each digest is stored. A torn
// last line (a crash while appending) is ignored: its Put had not started.
type Journal struct {
	path string

	mu      sync.Mutex
	f       *os.File
	head    *JournalHead
	intents map[string]string // key -> sha256
}

// JournalHead is the last digest the instance stored.
type JournalHead struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	End    string `json:"end"`
}

type journalLine struct {
	Head   *JournalHead `json:"head,omitempty"`
	Intent *intent      `json:"intent,omitempty"`
}

type intent struct {
	Key    string `json:"key"`
	SHA256 string `json:"sha256"`
}

// OpenJournal opens (or creates) the journal at path.
func OpenJournal(path string) (*Journal, error) {
	j := &Journal{path: path, intents: map[string]string{}}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the digest journal: %w", err)
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var l journalLine
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &l) != nil {
			continue // a torn last line
		}
		if l.Head != nil {
			j.head = l.Head
		}
		if l.Intent != nil {
			j.intents[l.Intent.Key] = l.Intent.SHA256
		}
	}
	if err := j.rewrite(); err != nil {
		return nil, err
	}
	return j, nil
}

// Head is the last digest the instance remembers storing (ok false when none).
func (j *Journal) Head() (JournalHead, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.head == nil {
		return JournalHead{}, false
	}
	return *j.head, true
}

// Intend records that key is about to be stored with bytes of hash sha256, durably.
func (j *Journal) Intend(key, sha256 string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.intents[key] == sha256 {
		return nil // a retried Put
	}
	b, _ := json.Marshal(journalLine{Intent: &intent{Key: key, SHA256: sha256}})
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("recording %s in the digest journal: %w", key, err)
	}
	if err := fsutil.SyncData(j.f); err != nil {
		return fmt.Errorf("recording %s in the digest journal: %w", key, err)
	}
	j.intents[key] = sha256
	return nil
}

// Intents returns the recorded objects no stored digest lists yet, by key.
func (j *Journal) Intents() map[string]string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make(map[string]string, len(j.intents))
	for k, v := range j.intents {
		out[k] = v
	}
	return out
}

// Stored records a digest the instance stored and forgets the objects it lists.
func (j *Journal) Stored(h JournalHead, listed []Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.head = &h
	for _, e := range listed {
		if j.intents[e.Key] == e.SHA256 {
			delete(j.intents, e.Key)
		}
	}
	return j.rewrite()
}

// Forget drops recorded objects that recovery resolved without a digest (listed already, never
// stored, or holding other bytes), so they are not looked at, and warned about, at every start.
// An object stored again later is recorded again (Intend) before its Put.
func (j *Journal) Forget(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, k := range keys {
		delete(j.intents, k)
	}
	return j.rewrite()
}

// Close closes the file.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// rewrite replaces the file with the head and the pending intents and reopens it for appending.
func (j *Journal) rewrite() error {
	keys := make([]string, 0, len(j.intents))
	for k := range j.intents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	err := fsutil.ReplaceFile(j.path, 0o600, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		if j.head != nil {
			if err := enc.Encode(journalLine{Head: j.head}); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if err := enc.Encode(journalLine{Intent: &intent{Key: k, SHA256: j.intents[k]}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing the digest journal: %w", err)
	}
	if j.f != nil {
		_ = j.f.Close()
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening the digest journal: %w", err)
	}
	j.f = f
	return nil
}
