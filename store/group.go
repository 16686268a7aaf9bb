package store

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
)

// maxGroup bounds how many writes share one transaction, so that one
// transaction's dirty pages stay a few megabytes at most.
const maxGroup = 1000

// errClosed answers a write made after Close.
var errClosed = errors.New("store closed")

// group is the store's group commit. Writes queue up; one goroutine, the
// committer, takes everything queued, runs it in one read-write
// transaction and syncs the file once for all of it, then answers each
// write. A write that finds the committer idle is committed at once (after
// the optional delay), so a lone hop pays one disk sync and no wait; writes
// that arrive while a sync is under way share the next one, so the disk
// sync is paid once per group under load. bbolt's own Batch waits its full
// delay even when nothing else is coming.
//
// A write may run more than once: when one write of a group fails, the
// transaction is rolled back, the failing write is run again alone for its
// own answer and the others again together. Writes therefore decide from
// what is stored, never from what an earlier run of theirs did.
type group struct {
	bolt  *bolt.DB
	delay time.Duration // how long an idle committer waits for company

	mu     sync.Mutex
	queue  []*write
	closed bool

	wake chan struct{} // buffered 1: the queue is not empty
	done chan struct{} // closed once the committer returned

	// What the committer has done: groups taken, the writes in them,
	// and the time it spent committing (WriterStats).
	groups, writesDone atomic.Uint64
	busy               atomic.Int64 // nanoseconds
}

// write is one queued function with the channel its answer goes to, and
// the funnel counts it adds (kit.FunnelCounts'), summed with those of the
// other writes of its transaction before it commits (addFunnels).
type write struct {
	fn     func(*bolt.Tx) error
	funnel []link.FunnelCount
	answer chan error
}

// writes recycles write values: a hop's commit allocates none.
var writes = sync.Pool{New: func() any { return &write{answer: make(chan error, 1)} }}

// newGroup starts the committer of db.
func newGroup(db *bolt.DB, delay time.Duration) *group {
	g := &group{bolt: db, delay: delay, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in a read-write transaction shared with the writes queued
// beside it, and returns once that transaction is synced to disk (or
// failed): fn's error if it failed, the commit's if that failed.
func (g *group) do(fn func(*bolt.Tx) error) error { return g.doCounting(fn, nil) }

// doCounting is do for a write that also adds funnel counts (as
// kit.FunnelCounts gives them; not changed here): they are added with the
// other writes' of the transaction, once per counter, after every write
// ran and before it commits. The write fails, alone, when they cannot be.
func (g *group) doCounting(fn func(*bolt.Tx) error, funnel []link.FunnelCount) error {
	w := writes.Get().(*write)
	w.fn, w.funnel = fn, funnel
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		w.fn, w.funnel = nil, nil
		writes.Put(w)
		return errClosed
	}
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // already woken
	}
	err := <-w.answer
	w.fn, w.funnel = nil, nil
	writes.Put(w)
	return err
}

// close commits what is queued, stops the committer and refuses further
// writes.
func (g *group) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-g.done
}

// run is the committer: on each wake-up it commits groups until the queue
// is empty.
func (g *group) run() {
	defer close(g.done)
	for range g.wake {
		if g.delay > 0 {
			time.Sleep(g.delay) // an idle committer waits for company
		}
		for {
			ws, closed := g.take()
			if len(ws) == 0 {
				if closed {
					return
				}
				break
			}
			start := time.Now()
			g.commit(ws)
			g.busy.Add(int64(time.Since(start)))
			g.groups.Add(1)
			g.writesDone.Add(uint64(len(ws)))
		}
	}
}

// take removes up to maxGroup queued writes.
func (g *group) take() ([]*write, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ws := g.queue
	if len(ws) > maxGroup {
		g.queue = slices.Clone(ws[maxGroup:])
		return ws[:maxGroup], g.closed
	}
	g.queue = nil
	return ws, g.closed
}

// commit runs ws in one transaction and answers each. When one fails, it
// is answered alone and the rest committed again without it.
func (g *group) commit(ws []*write) {
	failed, err := g.update(ws)
	if failed < 0 {
		for _, w := range ws {
			w.answer <- err
		}
		return
	}
	if len(ws) == 1 {
		ws[0].answer <- err
		return
	}
	lone := ws[failed]
	_, err = g.update([]*write{lone})
	lone.answer <- err
	rest := append(ws[:failed:failed], ws[failed+1:]...)
	g.commit(rest)
}

// update runs ws in one read-write transaction, then adds up the funnel
// counts they carry, and commits. failed is the index of the write that
// failed, -1 when none did (the commit itself may have). When the sum
// cannot be added (a counter that cannot be read), the write whose own
// counts fail is taken as failed (addFunnels): it runs alone next, and
// fails there as it did before the counts were summed, while the others
// run again without it.
func (g *group) update(ws []*write) (failed int, err error) {
	failed = -1
	err = g.bolt.Update(func(tx *bolt.Tx) error {
		for i, w := range ws {
			if err := call(w.fn, tx); err != nil {
				failed = i
				return err
			}
		}
		blame := 0 // a panic in the sum: each write is run alone in turn, and adds its own counts
		err := call(func(tx *bolt.Tx) (err error) { blame, err = addFunnels(tx, ws); return err }, tx)
		if err != nil {
			failed = blame
		}
		return err
	})
	return failed, err
}

// call runs fn, turning a panic into its error: one write's bug fails that
// write, not the committer and every hop queued behind it.
func call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store write panicked: %v", p)
		}
	}()
	return fn(tx)
}
