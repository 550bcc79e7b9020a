package sessions

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// sorter orders partial sessions by key with bounded memory: at most max in memory, the rest in
// sorted runs in temporary files, merged at the end.
type sorter struct {
	max     int
	dir     string
	buf     []partial
	files   []*os.File
	spills  int      // buffers written out (files may have been merged since)
	linked  []string // temporary files still to remove
	maxRuns int      // 0 => maxRuns (tests lower it)
}

func sortParts(ps []partial) {
	slices.SortFunc(ps, func(a, b partial) int { return compareKeys(a.key, b.key) })
}

func (s *sorter) add(p *partial) error {
	s.buf = append(s.buf, *p)
	if len(s.buf) >= s.max {
		return s.spill()
	}
	return nil
}

// spill writes the buffer, sorted, to a new temporary file.
func (s *sorter) spill() error {
	sortParts(s.buf)
	f, err := os.CreateTemp(s.dir, "archiver-sessions-*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file to sort sessions (set TMPDIR to a writable directory): %w", err)
	}
	s.files = append(s.files, f)
	s.spills++
	// Unlinked at once where the system allows it (Unix): the open file stays usable and its
	// space is freed when the process ends, however it ends.
	if os.Remove(f.Name()) != nil {
		s.linked = append(s.linked, f.Name())
	}
	w := bufio.NewWriterSize(f, 256<<10)
	var b []byte
	for i := range s.buf {
		b = encodePartial(b[:0], &s.buf[i])
		if _, err := w.Write(b); err != nil {
			break // Flush reports it
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the temporary file %s: %w", f.Name(), err)
	}
	clear(s.buf) // drop the strings
	s.buf = s.buf[:0]
	if len(s.files) >= s.runs() {
		return s.compact()
	}
	return nil
}

func (s *sorter) runs() int {
	if s.maxRuns > 0 {
		return s.maxRuns
	}
	return maxRuns
}

// close removes the temporary files.
func (s *sorter) close() {
	for _, f := range s.files {
		_ = f.Close() // read-only by now: nothing to lose
	}
	for _, name := range s.linked {
		_ = os.Remove(name) // best effort: it is in the temporary directory
	}
	s.files, s.linked = nil, nil
}

// each calls fn for every partial in key order (equal keys adjacent).
func (s *sorter) each(fn func(*partial) error) error {
	sortParts(s.buf)
	return mergeRuns(s.buf, s.files, fn)
}

// maxRuns bounds the temporary files open at once: when a spill makes more, they are merged
// into one (equal keys combined), so a long range never runs out of file descriptors.
const maxRuns = 64

// compact merges every temporary file into a new one, combining the partials of one key.
func (s *sorter) compact() error {
	f, err := os.CreateTemp(s.dir, "archiver-sessions-*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file to sort sessions (set TMPDIR to a writable directory): %w", err)
	}
	linked := os.Remove(f.Name()) != nil
	w := bufio.NewWriterSize(f, 256<<10)
	var b []byte
	var cur *partial
	write := func() {
		if cur != nil {
			b = encodePartial(b[:0], cur)
			_, _ = w.Write(b) // a write error sticks in w and is returned by Flush
		}
	}
	err = mergeRuns(nil, s.files, func(p *partial) error {
		if cur != nil && cur.key == p.key {
			cur.merge(p)
			return nil
		}
		write()
		c := *p
		cur = &c
		return nil
	})
	if err == nil {
		write()
		err = w.Flush()
	}
	old := s.files
	s.files = []*os.File{f}
	for _, o := range old {
		_ = o.Close() // merged into f
	}
	if linked {
		s.linked = append(s.linked, f.Name())
	}
	if err != nil {
		return fmt.Errorf("merging temporary files into %s: %w", f.Name(), err)
	}
	return nil
}

// mergeRuns calls fn for every partial of mem (sorted) and of the sorted files, in key order.
func mergeRuns(mem []partial, files []*os.File, fn func(*partial) error) error {
	if len(files) == 0 {
		for i := range mem {
			if err := fn(&mem[i]); err != nil {
				return err
			}
		}
		return nil
	}
	h := &runHeap{}
	if len(mem) > 0 {
		i := 0
		h.runs = append(h.runs, &run{next: func(p *partial) (bool, error) {
			if i == len(mem) {
				return false, nil
			}
			*p = mem[i]
			i++
			return true, nil
		}})
	}
	for _, f := range files {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("reading the temporary file %s: %w", f.Name(), err)
		}
		r := bufio.NewReaderSize(f, 64<<10)
		name := f.Name()
		h.runs = append(h.runs, &run{next: func(p *partial) (bool, error) {
			ok, err := decodePartial(r, p)
			if err != nil {
				err = fmt.Errorf("reading the temporary file %s: %w", name, err)
			}
			return ok, err
		}})
	}
	// Prime every run, dropping empty ones.
	live := h.runs[:0]
	for _, r := range h.runs {
		ok, err := r.next(&r.cur)
		if err != nil {
			return err
		}
		if ok {
			live = append(live, r)
		}
	}
	h.runs = live
	heap.Init(h)
	for h.Len() > 0 {
		r := h.runs[0]
		if err := fn(&r.cur); err != nil {
			return err
		}
		ok, err := r.next(&r.cur)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	return nil
}

// run is one sorted source of partials.
type run struct {
	cur  partial
	next func(*partial) (bool, error)
}

type runHeap struct{ runs []*run }

func (h *runHeap) Len() int           { return len(h.runs) }
func (h *runHeap) Less(i, j int) bool { return compareKeys(h.runs[i].cur.key, h.runs[j].cur.key) < 0 }
func (h *runHeap) Swap(i, j int)      { h.runs[i], h.runs[j] = h.runs[j], h.runs[i] }
func (h *runHeap) Push(x any)         { h.runs = append(h.runs, x.(*run)) }
func (h *runHeap) Pop() any {
	r := h.runs[len(h.runs)-1]
	h.runs = h.runs[:len(h.runs)-1]
	return r
}

// Spill record: flags byte, then domain, app, stream (uvarint length + bytes), pts (varint), and
// for each callback present its first received_at (varint seconds, uvarint nanoseconds) and that
// copy's client_ip and node_ip (seen.from: uvarint length + bytes).
const (
	fListed = 1 << iota
	fPub
	fPubVerified
	fDone
	fDoneVerified
)

func encodePartial(b []byte, p *partial) []byte {
	var f byte
	if p.listed {
		f |= fListed
	}
	if p.pub.ok {
		f |= fPub
		if p.pub.verified {
			f |= fPubVerified
		}
	}
	if p.done.ok {
		f |= fDone
		if p.done.verified {
			f |= fDoneVerified
		}
	}
	b = append(b, f)
	for _, s := range [...]string{p.domain, p.app, p.stream} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, p.pts)
	for _, s := range [...]*seen{&p.pub, &p.done} {
		if s.ok {
			b = binary.AppendVarint(b, s.first.Unix())
			b = binary.AppendUvarint(b, uint64(s.first.Nanosecond()))
			b = appendString(b, s.from)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(r *bufio.Reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxSpillString {
		return "", errDamaged
	}
	if n == 0 {
		return "", nil
	}
	// Grow with the data actually there, not with the length a damaged file claims.
	var b bytes.Buffer
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		return "", errDamaged
	}
	return b.String(), nil
}

// maxSpillString bounds a decoded name, so a damaged file cannot ask for a huge allocation.
const maxSpillString = 64 << 20

var errDamaged = errors.New("damaged temporary file")

// decodePartial reads the next record; false at a clean end of file.
func decodePartial(r *bufio.Reader, p *partial) (bool, error) {
	f, err := r.ReadByte()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var strs [3]string
	for i := range strs {
		if strs[i], err = readString(r); err != nil {
			return false, err
		}
	}
	pts, err := binary.ReadVarint(r)
	if err != nil {
		return false, errDamaged
	}
	*p = partial{key: key{domain: strs[0], app: strs[1], stream: strs[2], pts: pts}, listed: f&fListed != 0}
	for _, x := range [...]struct {
		s             *seen
		has, verified byte
	}{{&p.pub, fPub, fPubVerified}, {&p.done, fDone, fDoneVerified}} {
		if f&x.has == 0 {
			continue
		}
		sec, err1 := binary.ReadVarint(r)
		ns, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || ns >= 1e9 {
			return false, errDamaged
		}
		from, err := readString(r)
		if err != nil {
			return false, errDamaged
		}
		*x.s = seen{ok: true, first: time.Unix(sec, int64(ns)).UTC(), verified: f&x.verified != 0, from: from}
	}
	return true, nil
}
