// Package sink is the seam between intake (which decides what to archive) and the durability
// backends (the local spool for --ack spool, the store batcher for --ack store). An Entry is one
// archive line on its way to being durable; the backend reports the outcome exactly once through
// Entry.Finish.
package sink

import (
	"errors"
	"sync/atomic"
	"time"
)

// Errors a Sink returns from Submit (nothing was enqueued) or through Finish (the entry failed).
var (
	// ErrFull: the spool (or the store batcher's memory budget) is over its limit; retry later.
	ErrFull = errors.New("the archiver cannot buffer more events until the store catches up (spool at --spool-max-bytes, or --store-max-pending with --ack store); retry later")
	// ErrClosed: the archiver is shutting down.
	ErrClosed = errors.New("the archiver is shutting down")
	// ErrBusy: the group-commit queue is saturated.
	ErrBusy = errors.New("the archiver is overloaded, retry later")
)

// Resolver learns the outcome of an entry before its waiter does (the dedup set marks the event
// seen on success and forgets the reservation on failure).
type Resolver interface {
	Resolve(e *Entry, err error)
}

// Entry is one event to make durable.
type Entry struct {
	ID         [16]byte  // binary event ID (layout.EventID decoded)
	Day        string    // partition day, decided at intake
	ReceivedAt time.Time // decided at intake
	// Line is the archive line (layout.AppendRecord, ending in '\n'). The submitter must not
	// modify it until Done has received the outcome.
	Line []byte

	Resolver Resolver   // optional
	Done     chan error // buffered (cap >= 1); receives the outcome exactly once
}

// NewEntry returns an entry with its Done channel allocated.
func NewEntry() *Entry { return &Entry{Done: make(chan error, 1)} }

// Finish reports the outcome: first to the Resolver, then to the waiter. Backends call it exactly
// once per submitted entry; it never blocks.
func (e *Entry) Finish(err error) {
	if e.Resolver != nil {
		e.Resolver.Resolve(e, err)
	}
	select {
	case e.Done <- err:
	default: // a stale outcome nobody reads; never block the backend
	}
}

// Sink makes entries durable.
type Sink interface {
	// Submit enqueues e. On error nothing was enqueued and Finish will not be called.
	Submit(e *Entry) error
}

// Load counts the requests intake is handling. A group-commit backend reads it to tell whether
// more entries are on their way: waiting a fraction of a millisecond for them costs less than
// one more fdatasync, and with many concurrent senders it doubles the events per fdatasync. The
// zero value is ready to use; a nil *Load counts nothing.
type Load struct {
	active atomic.Int64 // requests inside intake (entered, not yet answered)
}

// Enter marks a request entering intake; Exit must follow.
func (l *Load) Enter() {
	if l != nil {
		l.active.Add(1)
	}
}

// Exit marks a request leaving intake.
func (l *Load) Exit() {
	if l != nil {
		l.active.Add(-1)
	}
}

// Active is the number of requests inside intake.
func (l *Load) Active() int {
	if l == nil {
		return 0
	}
	return int(l.active.Load())
}
