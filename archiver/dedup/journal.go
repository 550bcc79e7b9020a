package dedup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// Journal is the durable memory of events whose spool segments were uploaded and deleted. It is
// an append-only file of fixed-size entries, each with its own checksum, so a torn tail after a
// crash is recognised and dropped. Entries older than the TTL are dropped when it is compacted
// (on open and then at most hourly).
//
// Entry: 16-byte id, 8-byte big-endian unix nanos, 4-byte CRC-32C of the preceding 24 bytes.
type Journal struct {
	path string
	ttl  time.Duration
	now  func() time.Time

	mu          sync.Mutex
	f           *os.File
	entries     int
	lastCompact time.Time
}

const entrySize = 28

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compactEvery bounds how often Append rewrites the journal without its expired entries.
const compactEvery = time.Hour

// OpenJournal opens (creating if needed) the journal at path, drops entries older than ttl and a
// torn tail, and returns the live entries for seeding a Set.
func OpenJournal(path string, ttl time.Duration, now func() time.Time) (*Journal, []Item, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	j := &Journal{path: path, ttl: ttl, now: now}
	items, err := j.compact()
	if err != nil {
		return nil, nil, err
	}
	return j, items, nil
}

// readLive reads the journal, stopping at the first damaged entry (a torn tail), and keeps the
// entries still within the TTL.
func readLive(path string, cut time.Time) ([]Item, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening dedup journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var out []Item
	var e [entrySize]byte
	for {
		if _, err := io.ReadFull(r, e[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return nil, fmt.Errorf("reading dedup journal: %w", err)
		}
		if crc32.Checksum(e[:24], castagnoli) != binary.BigEndian.Uint32(e[24:]) {
			return out, nil // torn or damaged tail: nothing after it is trusted
		}
		var it Item
		copy(it.ID[:], e[:16])
		it.At = time.Unix(0, int64(binary.BigEndian.Uint64(e[16:24])))
		if !it.At.Before(cut) {
			out = append(out, it)
		}
	}
}

func appendEntry(dst []byte, it Item) []byte {
	start := len(dst)
	dst = append(dst, it.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(it.At.UnixNano()))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// compact rewrites the journal with only its live entries and reopens it for appending.
func (j *Journal) compact() ([]Item, error) {
	now := j.now()
	items, err := readLive(j.path, now.Add(-j.ttl))
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 0, len(items)*entrySize)
	for _, it := range items {
		buf = appendEntry(buf, it)
	}
	if err := fsutil.WriteFileAtomic(j.path, buf, 0o600); err != nil {
		return nil, fmt.Errorf("compacting dedup journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening dedup journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.entries, j.lastCompact = f, len(items), now
	return items, nil
}

// Append durably records items (one write, one fdatasync). It returns only once they are on disk.
func (j *Journal) Append(items []Item) error {
	if len(items) == 0 {
		return nil
	}
	buf := make([]byte, 0, len(items)*entrySize)
	for _, it := range items {
		buf = appendEntry(buf, it)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("dedup journal is closed")
	}
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("appending to dedup journal: %w", err)
	}
	if err := fsutil.SyncData(j.f); err != nil {
		return fmt.Errorf("syncing dedup journal: %w", err)
	}
	j.entries += len(items)
	if j.now().Sub(j.lastCompact) >= compactEvery {
		if _, err := j.compact(); err != nil {
			return err
		}
	}
	return nil
}

// Entries is the number of entries in the file (live or not yet compacted away).
func (j *Journal) Entries() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.entries
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
