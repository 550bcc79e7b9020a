package spool

import (
	"fmt"
	"math/bits"
	"os"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// lane is one group-commit writer with its own active segment. The dispatcher (Spool.run) hands
// each batch of queued entries to the lowest-numbered idle lane.
type lane struct {
	s   *Spool
	idx int

	work   chan []*sink.Entry // cap 1; closed at shutdown
	rotate chan chan struct{}
	done   chan struct{}

	act       *active
	prepared  chan *active
	preparing bool // a prepareNext goroutine will deliver on prepared
	wbuf      []byte
	lastSize  int64 // size of the lane's last sealed segment: the next one's pre-zeroed size
	timer     *time.Timer
	armed     bool
}

func newLane(s *Spool, idx int) *lane {
	l := &lane{s: s, idx: idx, work: make(chan []*sink.Entry, 1), rotate: make(chan chan struct{}),
		done: make(chan struct{}), prepared: make(chan *active, 1)}
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
	return l
}

var batchPool = sync.Pool{New: func() any { b := make([]*sink.Entry, 0, 256); return &b }}

// run drives the lanes. With one lane, the lane itself takes entries from the queue (no hop);
// with several, run is a dispatcher giving everything queued to the lowest-numbered idle lane.
func (s *Spool) run() {
	defer func() {
		s.smu.Lock()
		s.drained = true
		s.smu.Unlock()
		close(s.done)
		s.wake()
	}()
	if len(s.lanes) == 1 {
		s.lanes[0].run(true)
		return
	}
	for _, l := range s.lanes {
		go l.run(false)
	}
	for {
		select {
		case e := <-s.ch:
			// Pick the lane only now: the lowest idle one at this moment, so light traffic
			// stays on lane 0.
			s.dispatch(s.waitIdle(), e)
		case ack := <-s.rotateReq:
			s.rotateAll()
			close(ack)
		case <-s.quit:
			goto shutdown
		}
	}
shutdown:
	for {
		select {
		case e := <-s.ch:
			s.dispatch(s.waitIdle(), e)
			continue
		default:
		}
		break
	}
	for _, l := range s.lanes {
		close(l.work)
	}
	for _, l := range s.lanes {
		<-l.done
	}
}

func (s *Spool) dispatch(lane int, first *sink.Entry) {
	bp := batchPool.Get().(*[]*sink.Entry)
	*bp = s.gather(append((*bp)[:0], first))
	s.lanes[lane].work <- *bp
}

// waitIdle claims the lowest-numbered idle lane, waiting for one (lanes always finish their
// batch, successfully or not).
func (s *Spool) waitIdle() int {
	for {
		s.idleMu.Lock()
		if s.idle != 0 {
			i := bits.TrailingZeros64(s.idle)
			s.idle &^= 1 << i
			s.idleMu.Unlock()
			return i
		}
		s.idleMu.Unlock()
		<-s.idleSig
	}
}

func (s *Spool) markIdle(i int) {
	s.idleMu.Lock()
	s.idle |= 1 << i
	s.idleMu.Unlock()
	select {
	case s.idleSig <- struct{}{}:
	default:
	}
}

func (s *Spool) rotateAll() {
	acks := make([]chan struct{}, len(s.lanes))
	for i, l := range s.lanes {
		acks[i] = make(chan struct{})
		l.rotate <- acks[i]
	}
	for _, a := range acks {
		<-a
	}
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
// arrives within LingerGap of the last. On the 2-core benchmark machine an fdatasync costs the
// CPU of a couple of requests (the virtio flush is synchronous), and without the wait a commit
// took the half of the concurrent requests that queued during the previous fdatasync: batches of
// about 9. Collecting the wave doubled them, for +8% requests/s and a p99 lower by a quarter.
// A lone sender never waits (the batch already holds every request in flight), and a trickle
// waits at most one gap. Only the goroutine taking entries from the queue calls it.
func (s *Spool) gather(batch []*sink.Entry) []*sink.Entry {
	batch = s.drain(batch)
	if s.o.Load == nil || s.o.Linger <= 0 {
		return batch
	}
	target := min(s.o.Load.Active(), maxBatchLen)
	if len(batch) >= target {
		return batch
	}
	deadline := time.Now().Add(s.o.Linger)
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

// run is the lane's loop. direct: the lane is the only one and serves the spool's queue,
// rotation requests and shutdown itself.
func (l *lane) run(direct bool) {
	defer close(l.done)
	var in <-chan *sink.Entry
	var rot <-chan chan struct{}
	var quit <-chan struct{}
	if direct {
		in, rot, quit = l.s.ch, l.s.rotateReq, l.s.quit
	}
	for {
		var timerC <-chan time.Time
		if l.armed {
			timerC = l.timer.C
		}
		select {
		case e := <-in:
			bp := batchPool.Get().(*[]*sink.Entry)
			l.commitPooled(bp, l.s.gather(append((*bp)[:0], e)))
		case batch, ok := <-l.work:
			if !ok {
				l.stop()
				return
			}
			l.commitPooled(&batch, batch)
		case <-timerC:
			l.armed = false
			l.seal("flush interval")
		case ack := <-l.rotate:
			l.seal("requested")
			close(ack)
		case ack := <-rot:
			l.seal("requested")
			close(ack)
		case <-quit:
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

func (l *lane) commitPooled(bp *[]*sink.Entry, batch []*sink.Entry) {
	l.commit(batch)
	clear(batch)
	*bp = batch[:0]
	batchPool.Put(bp)
}

func (l *lane) stop() {
	l.seal("shutdown")
	l.discardPrepared()
}

// prepareNext creates the lane's next segment in the background so rotation costs the writer no
// fsyncs. At most one preparation is outstanding; the preparer always delivers (nil on failure).
func (l *lane) prepareNext() {
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
func (l *lane) takePrepared() *active {
	if !l.preparing {
		return nil
	}
	l.preparing = false
	return <-l.prepared
}

func (l *lane) discardPrepared() {
	if a := l.takePrepared(); a != nil {
		a.f.Close()
		os.Remove(a.seg.Path)
		l.s.bytes.Add(-a.seg.Size)
	}
}

func (l *lane) openActive() error {
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
func (l *lane) commit(batch []*sink.Entry) {
	s := l.s
	if l.act == nil {
		if err := l.openActive(); err != nil {
			s.markIdle(l.idx)
			s.log.Error("cannot open a spool segment; answering 503", "error", err)
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
	// Idle before answering: the next batch (queued on l.work) goes to this lane again rather
	// than to another one, so light sequential traffic stays in one segment.
	s.markIdle(l.idx)
	if err != nil {
		err = fmt.Errorf("appending to spool segment: %w", err)
		s.log.Error("spool write failed; answering 503 and starting a new segment", "error", err)
		_ = a.f.Truncate(a.seg.Size) // best effort: drop the partial batch
		for _, e := range batch {
			e.Finish(err)
		}
		l.seal("write error")
		return
	}
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

// seal closes the lane's active segment and queues it for upload (or deletes it when empty).
func (l *lane) seal(reason string) {
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
		os.Remove(a.seg.Path)
		s.bytes.Add(-a.seg.Size)
		return
	}
	s.log.Debug("sealed spool segment", "segment", a.seg.Path, "records", a.records, "bytes", a.seg.Size, "reason", reason)
	s.smu.Lock()
	// Keep the queue in segment order (lanes seal independently).
	i := len(s.sealed)
	for i > 0 && s.sealed[i-1].Seq > a.seg.Seq {
		i--
	}
	s.sealed = append(s.sealed, nil)
	copy(s.sealed[i+1:], s.sealed[i:])
	s.sealed[i] = a.seg
	s.smu.Unlock()
	s.wake()
}
