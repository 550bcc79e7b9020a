package dedup

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// Journal is the durable memory of callbacks whose spool segments were uploaded and deleted. It
// is an append-only file of entries, each starting with a marker and ending with its own
// checksum, so a torn or damaged entry (a crash, a short write) costs only that entry: the reader
// resynchronises on the next marker whose checksum holds. It holds at most the set's cap of live
// entries (older ones are dropped when it is compacted, on open, hourly, and when it reaches
// twice the cap), so a restart never loads more than the cap. The file is created 0600 (it is in
// the spool directory, which is 0700).
//
// File: an 8-byte header journalMagic, then entries of 32 bytes: 4-byte marker entryMarker,
// 16-byte key, 8-byte big-endian unix nanos, 4-byte CRC-32C of the preceding 28 bytes.
// A file without the header is read in the earlier format (28-byte entries without a marker,
// stopping at the first damaged one) and rewritten in this one.
type Journal struct {
	path    string
	ttl     time.Duration
	max     int
	now     func() time.Time
	damaged int // stretches of damaged bytes skipped when it was opened

	mu          sync.Mutex
	f           *os.File
	entries     int
	lastCompact time.Time
	buf         []byte // Append's encoding buffer, reused
}

// maxAppendBuf bounds the encoding buffer Append keeps between calls.
const maxAppendBuf = 4 << 20

const (
	journalMagic    = "LHDEDUP2"
	entrySize       = 32
	legacyEntrySize = 28
)

var entryMarker = [4]byte{0xd3, 0xd0, 0x0b, 0x1e}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// compactEvery bounds how often Append rewrites the journal without its expired entries.
const compactEvery = time.Hour

// OpenJournal opens (creating if needed) the journal at path, capped at DefaultMaxEntries.
func OpenJournal(path string, ttl time.Duration, now func() time.Time) (*Journal, []Item, error) {
	return OpenJournalLimited(path, ttl, DefaultMaxEntries, now)
}

// OpenJournalLimited opens (creating if needed) the journal at path, drops entries older than
// ttl, damaged entries, and all but the newest maxEntries (<= 0: DefaultMaxEntries), and returns
// the live entries, oldest first, for seeding a Set.
func OpenJournalLimited(path string, ttl time.Duration, maxEntries int, now func() time.Time) (*Journal, []Item, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("creating the dedup journal's directory: %w", err)
	}
	j := &Journal{path: path, ttl: ttl, max: maxEntries, now: now}
	items, damaged, err := j.compact(true)
	if err != nil {
		return nil, nil, err
	}
	j.damaged = damaged
	return j, items, nil
}

// Damaged is the number of stretches of damaged bytes skipped when the journal was opened: each
// cost the entries in it (their redeliveries are archived again, marked as repeats).
func (j *Journal) Damaged() int { return j.damaged }

// scanJournal calls fn for every intact entry of the journal at path, oldest first. A missing
// file has no entries. damaged counts the stretches of bytes skipped to resynchronise.
func scanJournal(path string, fn func(Item)) (damaged int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("opening dedup journal: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, err := br.Peek(len(journalMagic))
	if err == nil && string(head) == journalMagic {
		_, _ = br.Discard(len(journalMagic))
		damaged, err = scanEntries(br, fn)
	} else {
		err = scanLegacy(br, fn)
	}
	if err != nil {
		return 0, fmt.Errorf("reading dedup journal %s: %w", path, err)
	}
	return damaged, nil
}

// scanEntries reads marker-framed entries, skipping damaged bytes up to the next valid entry.
func scanEntries(br *bufio.Reader, fn func(Item)) (damaged int, err error) {
	skipping := false
	for {
		b, err := br.Peek(entrySize)
		if len(b) < entrySize {
			if len(bytes.TrimRight(b, "\x00")) > 0 || skipping {
				damaged++ // a torn tail
			}
			if err == io.EOF || err == nil {
				return damaged, nil
			}
			return damaged, err
		}
		if it, ok := decodeEntry(b); ok {
			fn(it)
			_, _ = br.Discard(entrySize)
			skipping = false
			continue
		}
		if !skipping {
			damaged++
			skipping = true
		}
		// Resynchronise: jump to the next possible marker start.
		if i := bytes.Index(b[1:], entryMarker[:1]); i >= 0 {
			_, _ = br.Discard(1 + i)
		} else {
			_, _ = br.Discard(entrySize)
		}
	}
}

func decodeEntry(b []byte) (Item, bool) {
	if !bytes.Equal(b[:4], entryMarker[:]) || crc32.Checksum(b[:28], castagnoli) != binary.BigEndian.Uint32(b[28:32]) {
		return Item{}, false
	}
	var it Item
	copy(it.ID[:], b[4:20])
	it.At = time.Unix(0, int64(binary.BigEndian.Uint64(b[20:28])))
	return it, true
}

// scanLegacy reads the markerless format, stopping at the first damaged entry.
func scanLegacy(br *bufio.Reader, fn func(Item)) error {
	var e [legacyEntrySize]byte
	for {
		if _, err := io.ReadFull(br, e[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return err
		}
		if crc32.Checksum(e[:24], castagnoli) != binary.BigEndian.Uint32(e[24:]) {
			return nil
		}
		var it Item
		copy(it.ID[:], e[:16])
		it.At = time.Unix(0, int64(binary.BigEndian.Uint64(e[16:24])))
		fn(it)
	}
}

func appendEntry(dst []byte, it Item) []byte {
	start := len(dst)
	dst = append(dst, entryMarker[:]...)
	dst = append(dst, it.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(it.At.UnixNano()))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// compact rewrites the journal with only its live entries (the newest max within the TTL) and
// reopens it for appending. It streams: one pass counts the live entries, a second copies the
// newest of them to a temporary file that then replaces the journal, so its memory does not grow
// with the journal. When collect is set it also returns those entries, oldest first (for seeding
// a Set on open).
func (j *Journal) compact(collect bool) ([]Item, int, error) {
	cut := j.now().Add(-j.ttl)
	live := 0
	damaged, err := scanJournal(j.path, func(it Item) {
		if !it.At.Before(cut) {
			live++
		}
	})
	if err != nil {
		return nil, 0, err
	}
	skip := max(0, live-j.max)
	kept := live - skip
	var items []Item
	if collect {
		items = make([]Item, 0, kept)
	}
	err = j.replace(func(w *bufio.Writer) error {
		var werr error
		var e [entrySize]byte
		seen := 0
		_, err := scanJournal(j.path, func(it Item) {
			if it.At.Before(cut) || werr != nil {
				return
			}
			seen++
			// Stop at kept: entries appended between the passes cannot exist (Append holds
			// j.mu), but a bound keeps the output to the cap whatever happens.
			if seen <= skip || seen > skip+kept {
				return
			}
			_, werr = w.Write(appendEntry(e[:0], it))
			if collect {
				items = append(items, it)
			}
		})
		if err != nil {
			return err
		}
		return werr
	})
	if err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("opening dedup journal: %w", err)
	}
	if j.f != nil {
		j.f.Close()
	}
	j.f, j.entries, j.lastCompact = f, kept, j.now()
	return items, damaged, nil
}

// replace writes a new journal through write into a temporary file in the journal's directory,
// syncs it and renames it over the journal (and syncs the directory): readers see the old journal
// or the new one, never a torn one.
func (j *Journal) replace(write func(*bufio.Writer) error) error {
	err := fsutil.ReplaceFile(j.path, 0o600, func(w *bufio.Writer) error {
		if _, err := w.WriteString(journalMagic); err != nil {
			return err
		}
		return write(w)
	})
	if err != nil {
		return fmt.Errorf("compacting dedup journal: %w", err)
	}
	return nil
}

// Append durably records items (one write, one fdatasync). It returns only once they are on disk.
// A short write leaves a torn entry that the next read skips; the entries after it are found
// again by their marker.
func (j *Journal) Append(items []Item) error {
	if len(items) == 0 {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return errors.New("dedup journal is closed")
	}
	buf := j.buf[:0]
	for _, it := range items {
		buf = appendEntry(buf, it)
	}
	if cap(buf) <= maxAppendBuf { // one segment's worth is reused; a huge batch is not kept
		j.buf = buf[:0]
	}
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("appending to dedup journal: %w", err)
	}
	if err := fsutil.SyncData(j.f); err != nil {
		return fmt.Errorf("syncing dedup journal: %w", err)
	}
	j.entries += len(items)
	if j.entries >= 2*j.max || j.now().Sub(j.lastCompact) >= compactEvery {
		if _, _, err := j.compact(false); err != nil {
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
