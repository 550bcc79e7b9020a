package spool

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// What the relay needs from the spool: it reads committed records as they are committed (tail),
// and holds segments that are uploaded but not yet passed by every destination (retention).

// Retainer says whether a segment must stay on disk after its upload: true while some consumer
// (a relay destination) has not passed it. It must not call back into the spool.
type Retainer interface {
	Retains(seq uint64) bool
}

// View is a segment a consumer may read: Size bytes of it are committed (durable).
type View struct {
	Seq     uint64
	Path    string
	Size    int64
	Records int  // records committed in it
	Sealed  bool // no more records will be appended
	// Uploaded: its objects are stored and only a Retainer keeps the file.
	Uploaded bool
}

// SetRetainer installs the retainer consulted by Remove (once, before uploads start).
func (s *Spool) SetRetainer(r Retainer) {
	s.smu.Lock()
	s.retainer = r
	s.smu.Unlock()
}

// MaxBytes is the spool's budget (Options.MaxBytes; <0 unlimited).
func (s *Spool) MaxBytes() int64 { return s.o.MaxBytes }

// Segments lists every segment on disk a consumer can read, oldest first: retained (uploaded),
// sealed (awaiting upload), and the active one up to its committed size.
func (s *Spool) Segments() []View {
	s.smu.Lock()
	defer s.smu.Unlock()
	out := make([]View, 0, len(s.retained)+len(s.sealed)+1)
	for _, g := range s.retained {
		out = append(out, View{Seq: g.Seq, Path: g.Path, Size: g.Size, Records: g.Records, Sealed: true, Uploaded: true})
	}
	for _, g := range s.sealed {
		out = append(out, View{Seq: g.Seq, Path: g.Path, Size: g.Size, Records: g.Records, Sealed: true})
	}
	if s.act != nil {
		out = append(out, *s.act)
	}
	slices.SortFunc(out, func(a, b View) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out
}

// Changed returns a channel closed at the next commit, seal or removal: a consumer that has read
// everything waits on it (taken before Segments, so no commit is missed).
func (s *Spool) Changed() <-chan struct{} {
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.changed
}

// broadcast wakes consumers; smu held.
func (s *Spool) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// setActive publishes the active segment's committed size (writer goroutine).
func (s *Spool) setActive(seg *Segment) {
	s.smu.Lock()
	if seg == nil {
		s.act = nil
	} else {
		s.act = &View{Seq: seg.Seq, Path: seg.Path, Size: seg.Size, Records: seg.Records}
	}
	s.broadcastLocked()
	s.smu.Unlock()
}

// retain keeps an uploaded segment for the retainer; reports whether it did.
func (s *Spool) retain(seg *Segment) bool {
	s.smu.Lock()
	defer s.smu.Unlock()
	if s.retainer == nil || !s.retainer.Retains(seg.Seq) {
		return false
	}
	if i := slices.Index(s.sealed, seg); i >= 0 {
		s.sealed = slices.Delete(s.sealed, i, i+1)
	}
	s.retained = append(s.retained, seg)
	s.broadcastLocked()
	return true
}

// ReleaseRetained deletes the uploaded segments the retainer no longer holds. The relay calls it
// when a destination moves past a segment.
func (s *Spool) ReleaseRetained() {
	s.smu.Lock()
	var gone []*Segment
	keep := s.retained[:0]
	for _, g := range s.retained {
		if s.retainer != nil && s.retainer.Retains(g.Seq) {
			keep = append(keep, g)
		} else {
			gone = append(gone, g)
		}
	}
	clear(s.retained[len(keep):])
	s.retained = keep
	s.smu.Unlock()
	for _, g := range gone {
		if err := os.Remove(g.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("removing a relayed spool segment", "segment", g.Path, "error", err)
		}
		s.bytes.Add(-g.Size)
	}
	if len(gone) > 0 {
		s.wake()
	}
}

// ReadRange calls fn for every intact record of the segment file at path between byte offsets
// from and to (to: the committed size), in order, with the offset just past the record. Damaged
// bytes are skipped (resynchronising on the next intact frame), never fatal: the uploader's read
// sets them aside. from 0 starts after the header.
func ReadRange(path string, from, to int64, fn func(rec Record, next int64) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading spool segment: %w", err)
	}
	defer f.Close()
	if from == 0 {
		_, _, hlen, err := readHeader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("reading spool segment %s: %w", path, err)
		}
		from = hlen
	}
	if to <= from {
		return nil
	}
	data := make([]byte, to-from)
	if _, err := f.ReadAt(data, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading spool segment: %w", err)
	}
	off := 0
	for off < len(data) {
		rec, n, ok := parseFrame(data[off:])
		if ok {
			off += n
			if err := fn(rec, from+int64(off)); err != nil {
				return err
			}
			continue
		}
		if allZero(data[off:]) {
			return nil
		}
		next := off + 1
		for ; next < len(data); next++ {
			if _, _, ok := parseFrame(data[next:]); ok {
				break
			}
		}
		off = next
	}
	return nil
}
