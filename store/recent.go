package store

import (
	"bytes"
	"sync"
)

// recent remembers the stored bytes of the sessions this process wrote
// last, so that the next hop of a session in progress reads its record
// without a read transaction and two index walks. Only the committed is
// remembered: each write to the sessions' buckets (sessionRows.put and
// delete) marks its session pending while its transaction holds bbolt's
// writer lock, and fills it in from the transaction's commit; a pending
// session is read from the file, so a reader never sees the record a
// newer commit replaced, and a rolled-back write is never seen at all.
// Commits report in any order once the writer lock is released, so each
// entry keeps the id of the transaction that wrote it, and a report from
// an older transaction than the entry's is ignored. The store's file is
// its process's alone (bbolt locks it), so nothing else writes behind it.
type recent struct {
	mu sync.Mutex
	m  map[string]recentEntry
	// floor is the newest transaction forgotten when the map was last
	// emptied: a later report from a transaction up to it might be older
	// than what was forgotten, and is ignored.
	floor uint64
	top   uint64 // the newest transaction reported
}

// recentEntry is one session's record as of transaction tx: pending until
// tx commits; then data, nil when the session was deleted.
type recentEntry struct {
	data    []byte
	tx      uint64
	pending bool
}

// recentMax bounds the entries kept: many times the sessions in progress
// at once, a few megabytes at most. When full, all are forgotten.
const recentMax = 4096

func newRecent() *recent { return &recent{m: make(map[string]recentEntry)} }

// get returns a copy of session id's record and true when it is known:
// nil data means the session was deleted.
func (c *recent) get(id string) ([]byte, bool) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	switch {
	case !ok || e.pending:
		return nil, false
	case e.data == nil:
		return nil, true
	}
	return bytes.Clone(e.data), true // the caller's own, as a read transaction's would be
}

// pend marks session id as being written by transaction tx, which holds
// the writer lock: until set reports its commit, id is read from the file.
func (c *recent) pend(id string, tx uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(id, recentEntry{tx: tx, pending: true})
}

// set records that transaction tx committed data (nil: a deletion) as
// session id's record. data must not change afterwards.
func (c *recent) set(id string, data []byte, tx uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.put(id, recentEntry{data: data, tx: tx})
}

// put stores e as id's entry unless what is known of id is newer; c.mu
// is held.
func (c *recent) put(id string, e recentEntry) {
	if e.tx <= c.floor {
		return
	}
	held, ok := c.m[id]
	if ok && held.tx > e.tx {
		return // a newer transaction's write came first
	}
	if !ok && len(c.m) >= recentMax {
		c.forget()
		if e.tx <= c.floor {
			return
		}
	}
	c.m[id] = e
	c.top = max(c.top, e.tx)
}

// forget empties the map; c.mu is held.
func (c *recent) forget() {
	clear(c.m)
	c.floor = c.top
}

// close forgets everything and every later report: reads go to the
// (closed) file.
func (c *recent) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forget()
	c.floor = ^uint64(0)
}
