// Package spool is the local write-ahead log of --ack spool: an event is appended to the active
// segment file and fsynced (group commit: one writer goroutine, one write + one fdatasync for every
// event that arrived meanwhile) before the sender gets its 200. Segments are sealed by size, age or
// day change and handed to the uploader, which deletes them only once their objects are stored.
// After a crash, Open hands every surviving segment to the uploader again. Damaged bytes in a
// segment cost only the records they hit: readers find the next intact frame, and the damage is
// set aside in <segment>.damaged; a segment whose header cannot be read is set aside whole
// (<segment>.unreadable), never deleted.
package spool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/dedup"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// Defaults of the flags this package serves.
const (
	DefaultFlushInterval = 10 * time.Second
	DefaultFlushBytes    = 8 << 20
	DefaultMaxBytes      = 1 << 30
	DefaultLinger        = time.Millisecond
	DefaultLingerGap     = 300 * time.Microsecond
	DefaultCommitWindow  = 3 * time.Millisecond
	DefaultCommitTarget  = 24
)

const (
	queueLen      = 8192    // pending appends; beyond it Submit answers ErrBusy
	maxBatchLen   = 4096    // entries per group commit
	maxBatchBytes = 4 << 20 // bytes per group commit
	seqBlock      = 1024    // segment numbers reserved per write of the seq file
	segPrefix     = "seg-"
	segSuffix     = ".spool"
	instanceFile  = "instance.id"
	seqFile       = "seq"
	// JournalFile is the dedup journal's name inside the spool directory.
	JournalFile = "dedup.journal"
)

// Exists reports whether dir holds a spool (the instance file every spool has), so that a command
// that only reads spools (archiver drain) never creates one in a mistyped directory.
func Exists(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, instanceFile))
	return err == nil && fi.Mode().IsRegular()
}

// ErrDrained is returned by Next once the spool is closed and every sealed segment was removed.
var ErrDrained = errors.New("spool closed and drained")

// Options configure a spool.
type Options struct {
	Dir           string
	Instance      string // "" => the id persisted in Dir (created on first use)
	Gzip          bool   // recorded in each segment: the uploader encodes its objects accordingly
	FlushInterval time.Duration
	FlushBytes    int64
	MaxBytes      int64 // Submit answers ErrFull above it; <0 => unlimited
	Logger        *slog.Logger
	// OnCommit, if set, is told about every successful group commit (metrics).
	OnCommit func(events int, took time.Duration)
	// OnDamage, if set, is told how many damaged records a read set aside (metrics).
	OnDamage func(records int)
	// OnSetAside, if set, is told when a whole segment is set aside (metrics).
	OnSetAside func()
	// Load, if set, is intake's count of requests in flight. A commit then waits a little for
	// entries that are on their way (see gather).
	Load *sink.Load
	// Linger bounds that wait in all (0 => DefaultLinger; < 0 => never wait), LingerGap the wait
	// for each next entry (0 => DefaultLingerGap).
	Linger, LingerGap time.Duration
	// CommitWindow and CommitTarget bound a commit's extension (see gather): once the requests in
	// flight are in the batch, it keeps gathering up to CommitTarget entries while they keep
	// coming within LingerGap, and no longer than CommitWindow after it began (CommitWindow <= 0:
	// never extend, the --commit-window 0 of archiver serve; CommitTarget 0: the default).
	CommitWindow time.Duration
	CommitTarget int
	// MaxRecovered bounds the event IDs kept from recovered segments for TakeRecovered (the
	// newest are kept; <= 0: all). The dedup memory keeps no more than its cap of them anyway.
	MaxRecovered int
}

// Segment is a sealed segment waiting for upload.
type Segment struct {
	Seq      uint64
	Path     string
	Instance string
	Gzip     bool
	Size     int64
	Records  int // committed records (intact ones, for a recovered segment)
}

type active struct {
	seg     *Segment
	f       *os.File
	day     string
	records int
}

// Spool is safe for concurrent use. Submit is the hot path.
type Spool struct {
	o        Options
	log      *slog.Logger
	instance string
	lockFile *os.File

	ch        chan *sink.Entry
	mu        sync.RWMutex // guards closed against concurrent Submit
	closed    bool
	quit      chan struct{}
	rotateReq chan chan struct{}
	done      chan struct{} // writer exited

	bytes atomic.Int64 // sum of segment file sizes

	smu      sync.Mutex
	sealed   []*Segment
	drained  bool
	notify   chan struct{}
	retained []*Segment    // uploaded, kept for the retainer (tail.go)
	retainer Retainer      // nil: no consumer
	act      *View         // the active segment's committed part
	changed  chan struct{} // closed at each commit/seal (tail.go)

	seqMu      sync.Mutex
	nextSeq    uint64
	reservedTo uint64

	recovered     []dedup.Item
	recoveredNext int // once len(recovered) == MaxRecovered: the oldest, overwritten next
	recoveredN    int // events found in recovered segments

	w *writer

	linger *time.Timer // gather's, stopped when unused
	extend sink.Extender

	readMu sync.Mutex // guards readBr and frame
	readBr *bufio.Reader
	frame  []byte

	diskErr atomic.Pointer[diskErr] // the last write failure, until a write or a probe succeeds
}

type diskErr struct {
	err error
	at  time.Time
}

// diskErrHold is how long a write failure is reported before a probe may clear it: a failed
// commit frees its own bytes, so a probe right after it proves little.
const diskErrHold = 10 * time.Second

// Compile-time check: the spool is a durability backend.
var _ sink.Sink = (*Spool)(nil)

// Open opens (creating) the spool directory, takes its lock, recovers the segments a previous
// process left and starts the group-commit writer.
func Open(ctx context.Context, o Options) (*Spool, error) {
	if o.Dir == "" {
		return nil, errors.New("spool directory is empty; set --spool")
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = DefaultFlushBytes
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.LingerGap <= 0 {
		o.LingerGap = DefaultLingerGap
	}
	if o.CommitTarget <= 0 {
		o.CommitTarget = DefaultCommitTarget
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	lf, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		o:         o,
		log:       o.Logger.With("component", "spool"),
		lockFile:  lf,
		ch:        make(chan *sink.Entry, queueLen),
		quit:      make(chan struct{}),
		rotateReq: make(chan chan struct{}),
		done:      make(chan struct{}),
		notify:    make(chan struct{}, 1),
		changed:   make(chan struct{}),
		linger:    time.NewTimer(time.Hour),
	}
	s.linger.Stop()
	ok := false
	defer func() {
		if !ok {
			lf.Close()
		}
	}()
	if s.instance, err = loadInstance(o.Dir, o.Instance); err != nil {
		return nil, err
	}
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	s.w = newWriter(s)
	s.w.prepareNext() // have the first segment ready
	ok = true
	go s.run()
	return s, nil
}

// Instance is the instance name new segments carry (recovered ones keep their own).
func (s *Spool) Instance() string { return s.instance }

// Bytes is the size of all segment files.
func (s *Spool) Bytes() int64 { return s.bytes.Load() }

// Full reports whether Submit would answer ErrFull.
func (s *Spool) Full() bool { return s.o.MaxBytes > 0 && s.bytes.Load() >= s.o.MaxBytes }

// DiskProblem reports why the spool's disk cannot take events now (the last write failed and a
// probe write still fails), or nil.
func (s *Spool) DiskProblem() error {
	p := s.diskErr.Load()
	if p == nil {
		return nil
	}
	if time.Since(p.at) < diskErrHold {
		return p.err
	}
	if err := s.probe(); err != nil {
		return err
	}
	s.diskErr.CompareAndSwap(p, nil)
	return nil
}

// probe writes and syncs a small file in the spool directory: does the disk take data again?
func (s *Spool) probe() error {
	f, err := os.CreateTemp(s.o.Dir, fsutil.TempPrefix+"probe-*")
	if err != nil {
		return fmt.Errorf("spool directory %s: %w", s.o.Dir, err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(make([]byte, 64<<10)); err != nil {
		return fmt.Errorf("spool directory %s: %w", s.o.Dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("spool directory %s: %w", s.o.Dir, err)
	}
	return nil
}

func (s *Spool) setDiskErr(err error) {
	if err == nil {
		if s.diskErr.Load() != nil {
			s.diskErr.Store(nil)
		}
		return
	}
	s.diskErr.Store(&diskErr{err: err, at: time.Now()})
}

// Pending is the number of sealed segments waiting for upload.
func (s *Spool) Pending() int {
	s.smu.Lock()
	defer s.smu.Unlock()
	return len(s.sealed)
}

// TakeRecovered returns (once) the events found in segments left by a previous process, so the
// dedup set remembers them.
func (s *Spool) TakeRecovered() []dedup.Item {
	s.smu.Lock()
	defer s.smu.Unlock()
	r := s.recovered
	if s.recoveredNext > 0 { // a full ring: oldest first
		r = append(r[s.recoveredNext:len(r):len(r)], r[:s.recoveredNext]...)
	}
	s.recovered, s.recoveredNext = nil, 0
	return r
}

// Submit enqueues e for the next group commit. e.Finish is called once it is fsynced (or failed).
func (s *Spool) Submit(e *sink.Entry) error {
	if s.Full() {
		return sink.ErrFull
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return sink.ErrClosed
	}
	select {
	case s.ch <- e:
		return nil
	default:
		return sink.ErrBusy
	}
}

// Rotate seals the active segment now (tests, and operators via the uploader's flush).
func (s *Spool) Rotate(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case s.rotateReq <- done:
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting, commits what is queued, seals the active segment and stops the writer.
// Sealed segments stay for the uploader (Next returns ErrDrained once they are all removed).
func (s *Spool) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.quit)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("closing spool: %w", ctx.Err())
	}
}

// Release gives up the directory lock (after Close and the final uploads).
func (s *Spool) Release() error {
	if s.lockFile == nil {
		return nil
	}
	err := s.lockFile.Close()
	s.lockFile = nil
	return err
}

// Next waits for the oldest sealed segment. The segment stays queued until Remove.
func (s *Spool) Next(ctx context.Context) (*Segment, error) {
	for {
		s.smu.Lock()
		if len(s.sealed) > 0 {
			seg := s.sealed[0]
			s.smu.Unlock()
			return seg, nil
		}
		drained := s.drained
		s.smu.Unlock()
		if drained {
			return nil, ErrDrained
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.notify:
		}
	}
}

// Remove deletes an uploaded segment, or keeps it (out of the upload queue) while the retainer
// still needs it.
func (s *Spool) Remove(seg *Segment) error {
	if s.retain(seg) {
		return nil
	}
	if err := os.Remove(seg.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing uploaded spool segment: %w", err)
	}
	// A lost unlink only means a harmless re-upload of identical bytes after a crash.
	_ = fsutil.SyncDir(s.o.Dir)
	s.forget(seg)
	return nil
}

// forget drops a segment that left the spool (uploaded or quarantined) from the upload queue and
// the byte count, and wakes intake that may be waiting for room.
func (s *Spool) forget(seg *Segment) {
	s.bytes.Add(-seg.Size)
	s.smu.Lock()
	if i := slices.Index(s.sealed, seg); i >= 0 {
		s.sealed = slices.Delete(s.sealed, i, i+1)
	}
	s.smu.Unlock()
	s.wake()
}

// Quarantine takes a segment that cannot be read out of the upload queue, renaming it to
// *.spool.unreadable so that an operator can inspect it and the queue moves on.
func (s *Spool) Quarantine(seg *Segment) (string, error) {
	dst, err := s.setAside(seg.Path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("quarantining spool segment: %w", err)
	}
	s.forget(seg)
	return dst, nil
}

// setAside renames an unreadable segment to *.unreadable for inspection (never deletes it) and
// counts it (Options.OnSetAside), at start-up and while running alike.
func (s *Spool) setAside(path string) (string, error) {
	dst := path + ".unreadable"
	err := os.Rename(path, dst)
	if s.o.OnSetAside != nil {
		s.o.OnSetAside()
	}
	return dst, err
}

func (s *Spool) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Read streams a segment's intact records to fn, in order. Damaged bytes between intact records
// (and a damaged tail) are set aside in <segment>.damaged, logged and counted (OnDamage); the
// records after them are still read. An error means the segment itself cannot be read.
//
// The segment is read frame by frame, holding one record at a time, not the whole file. At the
// first offset that is not an intact frame (damage, a torn or zero-filled tail) the rest of the
// file is read whole and scanned from there, resynchronising as scanFrames does: the records
// delivered are the same as a scan of the whole file would deliver.
func (s *Spool) Read(seg *Segment, fn func(Record) error) error {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	f, err := os.Open(seg.Path)
	if err != nil {
		return fmt.Errorf("reading spool segment: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil {
		return fmt.Errorf("reading spool segment: %w", err)
	} else if st.IsDir() {
		return fmt.Errorf("reading spool segment: %s is a directory", seg.Path)
	}
	if s.readBr == nil {
		s.readBr = bufio.NewReaderSize(f, readChunk)
	} else {
		s.readBr.Reset(f)
	}
	br := s.readBr
	defer br.Reset(nil) // do not keep the file reachable
	_, _, hlen, err := readHeader(br)
	if err != nil {
		return fmt.Errorf("reading spool segment %s: %w", seg.Path, err)
	}
	off := hlen
	for {
		hdr, perr := br.Peek(frameHeader)
		if len(hdr) == 0 && errors.Is(perr, io.EOF) {
			break // clean end
		}
		l := 0
		if len(hdr) == frameHeader {
			l = int(binary.BigEndian.Uint32(hdr[:4]))
		}
		if l < minPayload || l > maxPayload {
			return s.readRest(seg, f, off, fn)
		}
		need := frameHeader + l
		if cap(s.frame) < need {
			s.frame = make([]byte, need)
		}
		buf := s.frame[:need]
		if _, err := io.ReadFull(br, buf); err != nil {
			return s.readRest(seg, f, off, fn)
		}
		rec, n, ok := parseFrame(buf)
		if !ok {
			return s.readRest(seg, f, off, fn)
		}
		if err := fn(rec); err != nil {
			return err
		}
		off += int64(n)
	}
	if cap(s.frame) > maxKeptFrame {
		s.frame = nil
	}
	return nil
}

// readRest reads the segment from off (not an intact frame) to its end and scans it, setting
// damaged bytes aside.
func (s *Spool) readRest(seg *Segment, f *os.File, off int64, fn func(Record) error) error {
	if cap(s.frame) > maxKeptFrame {
		s.frame = nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading spool segment: %w", err)
	}
	if st.Size() <= off {
		return nil
	}
	data := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil {
		return fmt.Errorf("reading spool segment: %w", err)
	}
	var damage [][2]int
	err = scanFrames(data, 0, fn, func(start, end int) { damage = append(damage, [2]int{start, end}) })
	if err != nil {
		return err
	}
	if len(damage) > 0 {
		s.setAsideDamage(seg.Path, data, damage)
	}
	return nil
}

// Read buffers: the file is read in chunks of readChunk; the one-record buffer is kept between
// segments up to maxKeptFrame (a larger record's buffer is dropped after use).
const (
	readChunk    = 64 << 10
	maxKeptFrame = 1 << 20
)

// setAsideDamage copies damaged byte ranges of a segment to <segment>.damaged (replacing an
// earlier copy from a retried read), so nothing is dropped unseen.
func (s *Spool) setAsideDamage(path string, data []byte, damage [][2]int) {
	total := 0
	dst := path + ".damaged"
	err := fsutil.ReplaceFile(dst, 0o600, func(w *bufio.Writer) error {
		for _, d := range damage {
			total += d[1] - d[0]
			if _, err := w.Write(data[d[0]:d[1]]); err != nil {
				return err
			}
		}
		return nil
	})
	s.log.Error("spool segment has damaged records; the intact records before and after them are uploaded, the damaged bytes are set aside for inspection",
		"segment", path, "damaged_records", len(damage), "damaged_bytes", total, "set_aside_in", dst, "error", err)
	if s.o.OnDamage != nil {
		s.o.OnDamage(len(damage))
	}
}

func segPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%020d%s", segPrefix, seq, segSuffix))
}

// recover scans the directory, trims zero fill, removes segments without records, queues
// the rest for upload and collects their event IDs.
func (s *Spool) recover(ctx context.Context) error {
	entries, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return fmt.Errorf("reading spool directory: %w", err)
	}
	var maxSeq uint64
	for _, de := range entries {
		name := de.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		maxSeq = max(maxSeq, seq)
		if err := s.recoverSegment(filepath.Join(s.o.Dir, name), seq); err != nil {
			return err
		}
	}
	sort.Slice(s.sealed, func(i, j int) bool { return s.sealed[i].Seq < s.sealed[j].Seq })
	persisted, err := readSeq(s.o.Dir)
	if err != nil {
		return err
	}
	// A fresh spool starts at the current time in microseconds: should the directory be lost and
	// the same --instance reused, new segment numbers still never meet the old ones.
	s.nextSeq = max(persisted, maxSeq+1, uint64(time.Now().UnixMicro()))
	s.reservedTo = s.nextSeq
	if len(s.sealed) > 0 {
		s.log.Info("recovered spool segments from a previous run; uploading them",
			"segments", len(s.sealed), "events", s.recoveredN, "bytes", s.bytes.Load())
	}
	return nil
}

func (s *Spool) recoverSegment(path string, seq uint64) error {
	data, err := os.ReadFile(path)
	var inst string
	var gz bool
	var hlen int64
	if err == nil {
		inst, gz, hlen, err = readHeader(bufio.NewReader(bytes.NewReader(data)))
	}
	if err != nil {
		if len(data) > 0 && allZero(data) || len(data) == 0 && errors.Is(err, io.EOF) {
			// Created just before a crash: no byte was written, so no event was ever in it.
			s.log.Warn("removing an empty spool segment left by a crash", "segment", path)
			return removeFile(path)
		}
		dst, rerr := s.setAside(path)
		s.log.Error("spool segment header cannot be read; set aside (not deleted) for inspection: its events are NOT in the archive",
			"segment", path, "moved_to", dst, "error", err, "rename_error", rerr)
		return nil
	}
	n := 0
	damaged := 0
	_ = scanFrames(data, int(hlen), func(rec Record) error {
		s.addRecovered(dedup.Item{ID: rec.ID, At: rec.ReceivedAt})
		n++
		return nil
	}, func(_, _ int) { damaged++ })
	// The valid end of the file: past the last frame or damage, before any zero fill.
	size := int64(len(data))
	for size > hlen && data[size-1] == 0 {
		size--
	}
	if damaged > 0 {
		s.log.Warn("spool segment has damaged bytes; its intact records will be uploaded and the damage set aside when it is read",
			"segment", path, "intact_records", n, "damaged_ranges", damaged)
	}
	if n == 0 && damaged == 0 {
		return removeFile(path)
	}
	if size != int64(len(data)) {
		if err := os.Truncate(path, size); err != nil {
			return fmt.Errorf("trimming the zero fill of spool segment %s: %w", path, err)
		}
	}
	s.sealed = append(s.sealed, &Segment{Seq: seq, Path: path, Instance: inst, Gzip: gz, Size: size, Records: n})
	s.bytes.Add(size)
	return nil
}

// addRecovered remembers a recovered event ID, keeping the newest MaxRecovered (segments are
// recovered in order, oldest first).
func (s *Spool) addRecovered(it dedup.Item) {
	s.recoveredN++
	if s.o.MaxRecovered <= 0 || len(s.recovered) < s.o.MaxRecovered {
		s.recovered = append(s.recovered, it)
		return
	}
	s.recovered[s.recoveredNext] = it
	s.recoveredNext = (s.recoveredNext + 1) % len(s.recovered)
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing empty spool segment: %w", err)
	}
	return nil
}

func readSeq(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, seqFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading spool sequence file: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("spool sequence file %s is damaged (%w); remove it only if the spool holds no segments", filepath.Join(dir, seqFile), err)
	}
	return n, nil
}

// reserveSeq hands out the next segment number, persisting a high-water mark in blocks so that a
// number is never reused after a restart.
func (s *Spool) reserveSeq() (uint64, error) {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	if s.nextSeq >= s.reservedTo {
		to := s.nextSeq + seqBlock
		if err := fsutil.WriteFileAtomic(filepath.Join(s.o.Dir, seqFile), []byte(strconv.FormatUint(to, 10)+"\n"), 0o600); err != nil {
			return 0, fmt.Errorf("reserving spool segment numbers: %w", err)
		}
		s.reservedTo = to
	}
	n := s.nextSeq
	s.nextSeq++
	return n, nil
}

// zeros is the fill of pre-zeroed segments.
var zeros = make([]byte, 1<<20)

// maxPrefill bounds how much of a segment is pre-zeroed.
const maxPrefill = 64 << 20

// minPrefill is the pre-zeroed size of a segment after a small one.
const minPrefill = 64 << 10

// createSegment makes a new segment file whose header and directory entry are durable. The file
// is pre-zeroed to prefill bytes (bounded by FlushBytes): commits then overwrite blocks that are
// already allocated and written, so fdatasync flushes data only instead of also committing the
// file system journal. The writer asks for about the size its last
// segment reached, so a quiet archiver does not write megabytes of zeros every flush interval.
// Recovery and sealing cut the zero tail off.
func (s *Spool) createSegment(prefill int64) (*active, error) {
	seq, err := s.reserveSeq()
	if err != nil {
		return nil, err
	}
	path := segPath(s.o.Dir, seq)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating spool segment: %w", err)
	}
	hdr := appendHeader(nil, s.instance, s.o.Gzip)
	_, err = f.Write(hdr)
	for fill := min(prefill, s.o.FlushBytes, maxPrefill); err == nil && fill > 0; {
		n := min(fill, int64(len(zeros)))
		_, err = f.Write(zeros[:n])
		fill -= n
	}
	if err == nil {
		err = fsutil.SyncData(f)
	}
	if err == nil {
		err = fsutil.SyncDir(s.o.Dir)
	}
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("creating spool segment: %w", err)
	}
	s.bytes.Add(int64(len(hdr)))
	return &active{seg: &Segment{Seq: seq, Path: path, Instance: s.instance, Gzip: s.o.Gzip, Size: int64(len(hdr))}, f: f}, nil
}
