// Package catalog keeps a list that is slow to fetch and changes rarely —
// Mono's institutions, which every dial starts with — fresh for a while,
// fetched by one caller at a time outside any lock and under its owner's
// lifetime, so a slow remote holds no caller beyond its own deadline. While
// a refresh runs, or after one failed, the list it has is served.
package catalog

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Cache holds one list of T. Its zero value is not usable: build it with New.
type Cache[T any] struct {
	base    context.Context // the owner's lifetime: a fetch runs under it
	fetch   func(context.Context) (T, error)
	ttl     time.Duration // how long a fetched list is fresh
	backoff time.Duration // after a failed fetch, how long before the next
	now     func() time.Time
	failed  func(error) // told of each failed fetch (to log it)

	mu       sync.Mutex
	list     T
	have     bool          // a list was fetched
	fetched  time.Time     // when list was fetched
	tried    time.Time     // when the last fetch started, then when it failed
	lastErr  error         // why the last fetch failed, if it did
	fetching chan struct{} // closed when the fetch under way ends; nil if none
}

// New returns a cache filled by fetch, run under base, fresh for ttl after
// each fetch and not fetched again for backoff after a failure; failed,
// when set, is told of each failure.
func New[T any](base context.Context, fetch func(context.Context) (T, error), ttl, backoff time.Duration,
	now func() time.Time, failed func(error)) *Cache[T] {
	return &Cache[T]{base: base, fetch: fetch, ttl: ttl, backoff: backoff, now: now, failed: failed}
}

// Get returns the list: the cached one when fresh (or while a refresh is
// under way, or backing off after a failure), otherwise the result of a
// fetch, waited for until ctx is done.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	now := c.now()
	c.mu.Lock()
	switch {
	case c.have && now.Sub(c.fetched) < c.ttl:
	case c.fetching != nil:
	case c.lastErr != nil && now.Sub(c.tried) < c.backoff:
	default:
		c.fetching, c.tried = make(chan struct{}), now
		go c.refresh(c.fetching)
	}
	list, have, wait, lastErr := c.list, c.have, c.fetching, c.lastErr
	c.mu.Unlock()
	var none T
	if have {
		return list, nil
	}
	if wait == nil {
		return none, lastErr
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return none, fmt.Errorf("catalog: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.have {
		return none, c.lastErr
	}
	return c.list, nil
}

// Prefetch starts a fetch when one is due, without waiting for it.
func (c *Cache[T]) Prefetch() {
	ctx, cancel := context.WithCancel(c.base)
	cancel() // nothing waits: the fetch runs on under the owner's lifetime
	c.Get(ctx)
}

// refresh runs one fetch and keeps its list, or its error.
func (c *Cache[T]) refresh(done chan struct{}) {
	list, err := c.fetch(c.base)
	c.mu.Lock()
	if err != nil {
		// The backoff counts from the failure: a fetch that took longer
		// than the backoff to fail is not tried again at once.
		c.lastErr, c.tried = err, c.now()
	} else {
		c.list, c.have, c.fetched, c.lastErr = list, true, c.now(), nil
	}
	c.fetching = nil
	c.mu.Unlock()
	if err != nil && c.failed != nil {
		c.failed(err) // outside the lock: a slow logger holds up no Get
	}
	close(done) // after failed: a waiter's next move comes after the failure is told
}
