package compact

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"hash"
	"io"
	"slices"

	"github.com/klauspost/compress/gzip"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// cacheLimit bounds the decoded input objects held at once while the compacted lines are
// gathered. Objects are evicted after their last needed line anyway; the bound matters only
// when many objects overlap in time (then an evicted object is read again when needed).
var cacheLimit int64 = 64 << 20

// ref locates one kept record in the day's inputs. It holds no pointers, so a day's worth of them
// is one flat allocation the garbage collector does not scan.
type ref struct {
	atOff int64 // received_at, in source.ats
	off   int64 // the line's offset in its decoded object
	atLen int32
	n     int32 // the line's length as stored (with its '\n' unless addNL)
	obj   int32 // index in source.keys
	addNL bool  // the object's last line lacks its '\n': the compacted line gets one
}

// size is the line's length in the compacted object.
func (r ref) size() int64 {
	if r.addNL {
		return int64(r.n) + 1
	}
	return int64(r.n)
}

// bytes is the line as compacted, from its decoded object.
func (r ref) bytes(lines []byte) []byte {
	b := lines[r.off : r.off+int64(r.n)]
	if r.addNL {
		return append(b[:len(b):len(b)], '\n')
	}
	return b
}

// source reads the day's input objects by index, holding only a bounded set of them decoded.
type source struct {
	ctx   context.Context
	store storage.Getter
	keys  []string
	gz    []bool
	sums  map[string]string // key -> sha256 of the stored bytes, as read in the first pass
	ats   []byte            // every kept received_at back to back: no allocation per record

	cache  map[int32]*cached
	size   int64  // decoded bytes in cache
	clock  uint64 // for least-recently-used eviction
	lastAt []int64
}

type cached struct {
	lines []byte
	used  uint64
}

func newSource(ctx context.Context, store storage.Getter) *source {
	return &source{ctx: ctx, store: store, sums: map[string]string{}, cache: map[int32]*cached{}}
}

// add reads the next input object and returns its index and decoded lines. Only this object
// stays cached: the first pass reads each object once, in order.
func (s *source) add(key string) (int32, []byte, error) {
	s.dropAll()
	_, gz := layout.IsObjectKey(key)
	obj := int32(len(s.keys))
	s.keys, s.gz = append(s.keys, key), append(s.gz, gz)
	lines, err := s.read(obj, true)
	if err != nil {
		return 0, nil, err
	}
	return obj, lines, nil
}

func (s *source) addAt(at []byte) (int64, int32) {
	off := int64(len(s.ats))
	s.ats = append(s.ats, at...)
	return off, int32(len(at))
}

func (s *source) at(r ref) []byte { return s.ats[r.atOff : r.atOff+int64(r.atLen)] }

// line is r's line as compacted.
func (s *source) line(r ref) ([]byte, error) {
	lines, err := s.object(r.obj)
	if err != nil {
		return nil, err
	}
	return r.bytes(lines), nil
}

// sort puts refs in the compacted order: by received_at, then by the line's bytes. The index is
// sorted by received_at alone, and only runs of equal received_at (rare) read their lines.
func (s *source) sort(refs []ref) error {
	slices.SortFunc(refs, func(a, b ref) int {
		if c := bytes.Compare(s.at(a), s.at(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(a.obj, b.obj); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && bytes.Equal(s.at(refs[i]), s.at(refs[j])) {
			j++
		}
		if j-i > 1 {
			run := refs[i:j]
			lines := make(map[ref][]byte, len(run))
			for _, r := range run {
				l, err := s.line(r)
				if err != nil {
					return err
				}
				lines[r] = l
			}
			// Distinct refs have distinct lines (equal lines share their identity), so the
			// order is total.
			slices.SortFunc(run, func(a, b ref) int { return bytes.Compare(lines[a], lines[b]) })
		}
		i = j
	}
	s.dropAll()
	return nil
}

// plan records where each object is needed last in refs (the compacted order), so gathering
// drops it right after.
func (s *source) plan(refs []ref) {
	s.dropAll()
	s.lastAt = make([]int64, len(s.keys))
	for i := range s.lastAt {
		s.lastAt[i] = -1
	}
	for _, r := range refs {
		s.lastAt[r.obj] = r.off
	}
}

// encode builds one compacted object from its refs with enc, also writing its lines to h when
// not nil. The bytes are valid until enc's next Reset.
func (s *source) encode(enc *layout.ObjectEncoder, chunk []ref, gz bool, h hash.Hash) ([]byte, error) {
	enc.Reset(gz)
	for _, r := range chunk {
		l, err := s.line(r)
		if err != nil {
			return nil, err
		}
		enc.Write(l)
		if h != nil {
			h.Write(l)
		}
		if s.lastAt != nil && s.lastAt[r.obj] == r.off {
			s.drop(r.obj)
		}
	}
	return enc.Bytes()
}

// object is input obj decoded, from the cache or read again.
func (s *source) object(obj int32) ([]byte, error) {
	s.clock++
	if c, ok := s.cache[obj]; ok {
		c.used = s.clock
		return c.lines, nil
	}
	return s.read(obj, false)
}

// read reads input obj, decodes it and caches it, evicting the least recently used others
// beyond cacheLimit. A reread must find the bytes the first pass indexed.
func (s *source) read(obj int32, first bool) ([]byte, error) {
	key := s.keys[obj]
	body, err := storage.ReadAll(s.ctx, s.store, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	sum := digest.Sum(body)
	if first {
		s.sums[key] = sum
	} else if s.sums[key] != sum {
		return nil, fmt.Errorf("reading %s again: it changed during compaction; nothing was removed, rerun to compact the day as it is now", key)
	}
	lines := body
	if s.gz[obj] {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("reading %s: not gzip: %w (move it out of the day to compact the rest)", key, err)
		}
		lines, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", key, err)
		}
	}
	for s.size+int64(len(lines)) > cacheLimit && len(s.cache) > 0 {
		var lru int32
		oldest := ^uint64(0)
		for o, c := range s.cache {
			if c.used < oldest {
				lru, oldest = o, c.used
			}
		}
		s.drop(lru)
	}
	s.cache[obj] = &cached{lines: lines, used: s.clock}
	s.size += int64(len(lines))
	return lines, nil
}

func (s *source) drop(obj int32) {
	if c, ok := s.cache[obj]; ok {
		s.size -= int64(len(c.lines))
		delete(s.cache, obj)
	}
}

func (s *source) dropAll() {
	clear(s.cache)
	s.size = 0
}
