package spool

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// writer is the spool's one group-commit writer: it owns the active segment and commits, with
// one write and one fdatasync, every entry queued since its last commit. One writer with bigger
// batches keeps flushes from serialising behind each other.
type writer struct {
	s *Spool

	act       *active
	prepared  chan *active
	preparing bool // a prepareNext goroutine will deliver on prepared
	wbuf      []byte
	lastSize  int64 // size of the last sealed segment: the next one's pre-zeroed size
	timer     *time.Timer
	armed     bool
}

func newWriter(s *Spool) *writer {
	w := &writer{s: s, prepared: make(chan *active, 1)}
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	return w
}

var batchPool = sync.Pool{New: func() any { b := make([]*sink.Entry, 0, 256); return &b }}

// run drives the writer until Close, then marks the spool drained of writes.
func (s *Spool) run() {
	defer func() {
		s.smu.Lock()
		s.drained = true
		s.smu.Unlock()
		close(s.done)
		s.wake()
	}()
	s.w.run()
}

// drain adds whatever else is queued, up to the batch limits.
func (s *Spool) drain(batch []*sink.Entry) []*sink.Entry {
	n := 0
	for _, e := range batch {
		n += len(e.Line)
	}
	for len(batch) < maxBatchLen && n < maxBatchBytes {
		select {
		case e := <-s.ch:
			batch = append(batch, e)
			n += len(e.Line)
		default:
			return batch
		}
	}
	return batch
}

// gather drains the queue into batch and then, while intake still holds requests that are not
// in the batch, keeps collecting them: up to Linger in all, and only as long as the next one
// arrives within LingerGap of the last. Without the wait a commit takes only the requests that
// queued during the previous fdatasync; collecting the whole wave gives larger batches, fewer
// fdatasyncs per event and a lower tail latency. A lone sender never waits (the batch already
// holds every request in flight), and a trickle waits at most one gap.
//
// Then, under concurrent load (two or more in the batch), it extends the commit: it keeps
// gathering new arrivals up to CommitTarget, while they come within LingerGap, until CommitWindow
// after it began. An fdatasync costs tens of microseconds of CPU on a virtual disk, so at a
// steady 5k/s waiting ~3 ms for 15-24 events instead of committing every ~5 cuts CPU per
// callback by a quarter (docs/performance.md). Closed-loop senders (each waits for its answer
// before sending again) bring nothing during an extension: one that gathers nothing turns
// extending off for sink.ExtendBackoff commits, so they pay one gap in that many commits.
// Only the goroutine taking entries from the queue calls it.
func (s *Spool) gather(batch []*sink.Entry) []*sink.Entry {
	batch = s.drain(batch)
	if s.o.Load == nil || s.o.Linger <= 0 {
		return batch
	}
	began := time.Now()
	batch = s.collect(batch, min(s.o.Load.Active(), maxBatchLen), began.Add(s.o.Linger))
	if s.o.CommitWindow <= 0 || len(batch) < 2 || len(batch) >= s.o.CommitTarget {
		return batch
	}
	if !s.extend.Try() {
		return batch
	}
	before := len(batch)
	batch = s.collect(batch, min(s.o.CommitTarget, maxBatchLen), began.Add(s.o.CommitWindow))
	s.extend.Done(len(batch) > before)
	return batch
}

// collect adds queued entries to batch until it holds target, deadline passes, or none arrives
// within LingerGap.
func (s *Spool) collect(batch []*sink.Entry, target int, deadline time.Time) []*sink.Entry {
	for len(batch) < target {
		wait := min(s.o.LingerGap, time.Until(deadline))
		if wait <= 0 {
			break
		}
		s.linger.Reset(wait)
		select {
		case e := <-s.ch:
			s.linger.Stop()
			batch = s.drain(append(batch, e))
		case <-s.linger.C:
			return batch
		}
	}
	return batch
}

// run is the writer's loop: commits, the flush-interval timer, rotation requests and shutdown.
func (l *writer) run() {
	for {
		var timerC <-chan time.Time
		if l.armed {
			timerC = l.timer.C
		}
		select {
		case e := <-l.s.ch:
			bp := batchPool.Get().(*[]*sink.Entry)
			l.commitPooled(bp, l.s.gather(append((*bp)[:0], e)))
		case <-timerC:
			l.armed = false
			l.seal("flush interval")
		case ack := <-l.s.rotateReq:
			l.seal("requested")
			close(ack)
		case <-l.s.quit:
			for {
				bp := batchPool.Get().(*[]*sink.Entry)
				batch := l.s.drain((*bp)[:0])
				if len(batch) == 0 {
					break
				}
				l.commitPooled(bp, batch)
			}
			l.stop()
			return
		}
	}
}

func (l *writer) commitPooled(bp *[]*sink.Entry, batch []*sink.Entry) {
	l.commit(batch)
	clear(batch)
	*bp = batch[:0]
	batchPool.Put(bp)
}

func (l *writer) stop() {
	l.seal("shutdown")
	l.discardPrepared()
}

// prepareNext creates the next segment in the background so rotation costs the writer no
// fsyncs. At most one preparation is outstanding; the preparer always delivers (nil on failure).
func (l *writer) prepareNext() {
	if l.preparing {
		return
	}
	l.preparing = true
	prefill := max(minPrefill, l.lastSize+l.lastSize/4)
	go func() {
		a, err := l.s.createSegment(prefill)
		if err != nil {
			l.s.log.Error("preparing the next spool segment failed; will retry when it is needed", "error", err)
			a = nil
		}
		l.prepared <- a
	}()
}

// takePrepared waits for the outstanding preparation, if any.
func (l *writer) takePrepared() *active {
	if !l.preparing {
		return nil
	}
	l.preparing = false
	return <-l.prepared
}

func (l *writer) discardPrepared() {
	if a := l.takePrepared(); a != nil {
		a.f.Close()
		os.Remove(a.seg.Path)
		l.s.bytes.Add(-a.seg.Size)
	}
}

func (l *writer) openActive() error {
	a := l.takePrepared()
	if a == nil {
		var err error
		if a, err = l.s.createSegment(max(minPrefill, l.lastSize)); err != nil {
			return err
		}
	}
	l.act = a
	l.prepareNext()
	return nil
}

// commit writes a batch with one write and one fdatasync, then answers every waiter.
func (l *writer) commit(batch []*sink.Entry) {
	s := l.s
	if l.act == nil {
		if err := l.openActive(); err != nil {
			s.log.Error("cannot open a spool segment; answering 503", "error", err)
			s.setDiskErr(err)
			for _, e := range batch {
				e.Finish(err)
			}
			return
		}
	}
	a := l.act
	l.wbuf = l.wbuf[:0]
	newDay := false
	for _, e := range batch {
		l.wbuf = appendRecord(l.wbuf, e.ReceivedAt, e.ID, e.Day, e.Line)
		if a.day == "" {
			a.day = e.Day
		} else if e.Day != a.day {
			newDay = true
		}
	}
	began := time.Now()
	_, err := a.f.WriteAt(l.wbuf, a.seg.Size) // overwrites the pre-zeroed area
	if err == nil {
		err = fsutil.SyncData(a.f)
	}
	if err != nil {
		err = fmt.Errorf("appending to spool segment: %w", err)
		s.log.Error("spool write failed; answering 503 and starting a new segment", "error", err)
		s.setDiskErr(err)
		_ = a.f.Truncate(a.seg.Size) // best effort: drop the partial batch
		for _, e := range batch {
			e.Finish(err)
		}
		l.seal("write error")
		return
	}
	s.setDiskErr(nil)
	if s.o.OnCommit != nil {
		s.o.OnCommit(len(batch), time.Since(began))
	}
	n := int64(len(l.wbuf))
	a.seg.Size += n
	s.bytes.Add(n)
	if a.records == 0 {
		l.timer.Reset(s.o.FlushInterval)
		l.armed = true
	}
	a.records += len(batch)
	a.seg.Records = a.records
	s.setActive(a.seg) // consumers (the relay) may read up to here now
	for _, e := range batch {
		e.Finish(nil)
	}
	if cap(l.wbuf) > 2*maxBatchBytes {
		l.wbuf = nil
	}
	if a.seg.Size >= s.o.FlushBytes || newDay {
		l.seal("size or day")
	}
}

// seal closes the active segment and queues it for upload (or deletes it when empty).
func (l *writer) seal(reason string) {
	s := l.s
	a := l.act
	if a == nil {
		return
	}
	l.act = nil
	l.lastSize = a.seg.Size
	l.timer.Stop()
	l.armed = false
	// Cut the unused pre-zeroed tail (no sync needed: recovery treats a zero tail as the end).
	if err := a.f.Truncate(a.seg.Size); err != nil {
		s.log.Warn("trimming spool segment", "segment", a.seg.Path, "error", err)
	}
	if err := a.f.Close(); err != nil {
		s.log.Warn("closing spool segment", "segment", a.seg.Path, "error", err)
	}
	if a.records == 0 {
		s.setActive(nil)
		os.Remove(a.seg.Path)
		s.bytes.Add(-a.seg.Size)
		return
	}
	s.log.Debug("sealed spool segment", "segment", a.seg.Path, "records", a.records, "bytes", a.seg.Size, "reason", reason)
	s.smu.Lock()
	s.sealed = append(s.sealed, a.seg) // one writer: sealed in segment order
	s.act = nil                        // in the same step, so a consumer never misses the segment
	s.broadcastLocked()
	s.smu.Unlock()
	s.wake()
}
