package store

import (
	"bytes"
	"sync"
)

// recent remembers the stored bytes of the sessions this process wrote
// last, so that the next hop of a session in progress reads its record
// without a read transaction and two index walks. Only the committed is
// remembered: each write to the sessions' buckets reaches it from its
// transaction's commit (sessionRows.put and delete), never before and
// never from a rollback. Commits report in any order once bbolt's writer
// lock is released, so each entry keeps the id of the transaction that
// wrote it, and a report from an older transaction than the entry's is
// ignored. The store's file is its process's alone (bbolt locks it), so
// nothing else writes behind it.
type recent struct {
	mu sync.Mutex
	m  map[string]recentEntry
	// floor is the newest transaction forgotten when the map was last
	// emptied: a later report from a transaction up to it might be older
	// than what was forgotten, and is ignored.
	floor uint64
	top   uint64 // the newest transaction reported
}

// recentEntry is one session's record as of transaction tx; nil data: the
// session was deleted.
type recentEntry struct {
	data []byte
	tx   uint64
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
	if !ok || e.data == nil {
		return nil, ok
	}
	return bytes.Clone(e.data), true // the caller's own, as a read transaction's would be
}

// set records that transaction tx committed data (nil: a deletion) as
// session id's record. data must not change afterwards.
func (c *recent) set(id string, data []byte, tx uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tx <= c.floor {
		return
	}
	if e, ok := c.m[id]; ok && e.tx > tx {
		return // a newer transaction's write was reported first
	}
	if len(c.m) >= recentMax {
		clear(c.m)
		c.floor = c.top
		if tx <= c.floor {
			return
		}
	}
	c.m[id] = recentEntry{data: data, tx: tx}
	c.top = max(c.top, tx)
}
