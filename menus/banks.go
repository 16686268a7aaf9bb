package menus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ussdlink/ussdlink/mono"
)

// catalog caches Mono's institution list: every dial starts with it, and it
// changes rarely. One fetch runs at a time, outside the lock and under the
// engine's lifetime, so a slow Mono holds no hop beyond its own deadline;
// while a refresh runs, or after one failed, the list it has is served.
type catalog struct {
	ttl     time.Duration // how long a fetched list is fresh
	backoff time.Duration // after a failed fetch, how long before the next

	mu       sync.Mutex
	banks    []*Bank
	fetched  time.Time     // when banks was fetched
	tried    time.Time     // when the last fetch started
	lastErr  error         // why the last fetch failed, if it did
	fetching chan struct{} // closed when the fetch under way ends; nil if none
}

// get returns the banks: the cached list when fresh (or while a refresh is
// under way, or backing off after a failure), otherwise the result of a
// fetch, waited for until ctx is done.
func (c *catalog) get(ctx context.Context, e *Engine, now time.Time) ([]*Bank, error) {
	c.mu.Lock()
	switch {
	case c.banks != nil && now.Sub(c.fetched) < c.ttl:
	case c.fetching != nil:
	case c.lastErr != nil && now.Sub(c.tried) < c.backoff:
	default:
		c.fetching, c.tried = make(chan struct{}), now
		go c.fetch(e, c.fetching)
	}
	banks, wait, lastErr := c.banks, c.fetching, c.lastErr
	c.mu.Unlock()
	if banks != nil {
		return banks, nil
	}
	if wait == nil {
		return nil, lastErr
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, fmt.Errorf("list institutions: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.banks == nil {
		return nil, c.lastErr
	}
	return c.banks, nil
}

// fetch asks Mono for the institutions and keeps those with a usable form.
func (c *catalog) fetch(e *Engine, done chan struct{}) {
	list, err := e.mono.Institutions(e.base)
	var banks []*Bank
	for _, inst := range list {
		if inst.ID == "" || strings.TrimSpace(inst.Name) == "" {
			continue
		}
		b := &Bank{ID: inst.ID, Name: strings.TrimSpace(inst.Name)}
		for _, m := range inst.AuthMethods {
			if len(Flatten(m.UI).Fields) > 0 {
				b.Methods = append(b.Methods, m)
			}
		}
		banks = append(banks, b)
	}
	if err == nil && len(banks) == 0 {
		err = errors.New("mono listed no institutions")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = fmt.Errorf("list institutions: %w", err)
		e.log.Warn().Err(err).Msg("institutions unavailable")
	} else {
		c.banks, c.fetched, c.lastErr = banks, e.now(), nil
	}
	c.fetching = nil
	close(done)
}

// Prefetch starts loading the institution list, so the first dial does not
// wait for it.
func (e *Engine) Prefetch() {
	ctx, cancel := context.WithCancel(e.base)
	cancel() // nothing waits: the fetch runs on under the engine's lifetime
	e.banks.get(ctx, e, e.now())
}

// Institution returns the institution Mono lists under id, from the
// engine's cached catalogue (fetched when needed, waited for until ctx is
// done), with the auth methods a user can take through the screens (those
// whose form asks for something), or false when Mono does not list it. An
// error means the list could not be read, so nothing can be said of id.
// The partner API checks invitations with it.
func (e *Engine) Institution(ctx context.Context, id string) (mono.Institution, bool, error) {
	banks, err := e.banks.get(ctx, e, e.now())
	if err != nil {
		return mono.Institution{}, false, err
	}
	for _, b := range banks {
		if b.ID == id {
			return mono.Institution{ID: b.ID, Name: b.Name, AuthMethods: slices.Clone(b.Methods)}, true, nil
		}
	}
	return mono.Institution{}, false, nil
}

// filterBanks returns the banks whose name, or a word of it, starts with the
// typed letters (case and accents ignored). An empty filter keeps them all.
func filterBanks(banks []*Bank, typed string) []*Bank {
	typed = strings.ToLower(strings.TrimSpace(Transliterate(typed)))
	if typed == "" {
		return banks
	}
	var out []*Bank
	for _, b := range banks {
		name := strings.ToLower(Transliterate(b.Name))
		if strings.HasPrefix(name, typed) || strings.HasPrefix(strings.ReplaceAll(name, " ", ""), typed) {
			out = append(out, b)
			continue
		}
		for _, w := range strings.Fields(name) {
			if strings.HasPrefix(w, typed) {
				out = append(out, b)
				break
			}
		}
	}
	return out
}
