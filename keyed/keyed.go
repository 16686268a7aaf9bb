// Package keyed is a lock per key (a session id, a phone, an idempotency
// key): holders of one key are taken one at a time, and holders of
// different keys never wait on each other, as they would on a fixed array
// of mutexes picked by hashing the key, where two keys sharing a slot wait
// out each other's whole turn.
package keyed

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Mutex is a set of mutual-exclusion locks, one per key. A key's lock
// exists only while someone holds it or waits for it, so memory is bounded
// by the keys in use, not by every key ever seen. A key is copied when
// kept, so it may be a string over a buffer its caller reuses. The zero
// value is ready to use; a Mutex must not be copied after first use.
type Mutex struct {
	mu   sync.Mutex
	keys map[string]*entry
}

// entry is one key's lock: holding it is having put the one token in ch,
// which lets a waiter give up when its context ends. refs counts its
// holder and waiters; the entry is dropped when the last one leaves. key is
// its own copy of the key it is kept under.
type entry struct {
	key  string
	ch   chan struct{}
	refs int
}

// Lock waits for key's lock and returns the function that lets it go.
// unlock must be called exactly once; a second call panics.
func (m *Mutex) Lock(key string) (unlock func()) {
	e := m.join(key)
	e.ch <- struct{}{}
	return m.unlocker(e)
}

// TryLock takes key's lock if no one holds it, without waiting. ok reports
// whether it was taken; only then is unlock non-nil, to be called exactly
// once.
func (m *Mutex) TryLock(key string) (unlock func(), ok bool) {
	e := m.join(key)
	select {
	case e.ch <- struct{}{}:
		return m.unlocker(e), true
	default:
		m.leave(e)
		return nil, false
	}
}

// LockContext waits for key's lock until ctx ends. A lock free at the call
// is taken even when ctx has already ended, as TryLock would take it; one
// held by another is waited for only while ctx lasts, and then the error
// wraps ctx.Err(). On success unlock must be called exactly once.
//
// A caller already holding one key's lock and wanting a second bounds the
// wait this way instead of risking a deadlock against another doing the
// same the other way round, and without polling TryLock.
func (m *Mutex) LockContext(ctx context.Context, key string) (unlock func(), err error) {
	e := m.join(key)
	select {
	case e.ch <- struct{}{}:
		return m.unlocker(e), nil
	default:
	}
	select {
	case e.ch <- struct{}{}:
		return m.unlocker(e), nil
	case <-ctx.Done():
		m.leave(e)
		return nil, fmt.Errorf("keyed: waiting for a lock: %w", ctx.Err())
	}
}

// Len is how many keys are held or waited for: 0 once every lock taken has
// been let go and no one waits. It is for tests and metrics.
func (m *Mutex) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// join finds or makes key's entry and counts the caller in it.
func (m *Mutex) join(key string) *entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.keys[key]
	if !ok {
		if m.keys == nil {
			m.keys = map[string]*entry{}
		}
		// Copied: a key may be backed by a request buffer that is reused
		// while another holder still keeps its entry in the map.
		e = &entry{key: strings.Clone(key), ch: make(chan struct{}, 1)}
		m.keys[e.key] = e
	}
	e.refs++
	return e
}

// leave counts the caller out of e, dropping it when no one else holds or
// waits for its key.
func (m *Mutex) leave(e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(m.keys, e.key)
	}
}

// unlocker is the function letting go of the lock held through e.
func (m *Mutex) unlocker(e *entry) func() {
	var done atomic.Bool
	return func() {
		if !done.CompareAndSwap(false, true) {
			panic("keyed: unlock of a lock already let go")
		}
		<-e.ch
		m.leave(e)
	}
}
