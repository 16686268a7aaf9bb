package menus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// catalog caches Mono's institution list: every dial starts with it, and it
// changes rarely. A failed refresh keeps serving the list it has.
type catalog struct {
	ttl     time.Duration
	mu      sync.Mutex
	banks   []*Bank
	fetched time.Time
}

// get returns the banks, fetching them when the cache is empty or stale.
func (c *catalog) get(ctx context.Context, m Mono, now time.Time) ([]*Bank, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.banks != nil && now.Sub(c.fetched) < c.ttl {
		return c.banks, nil
	}
	list, err := m.Institutions(ctx)
	if err != nil || len(list) == 0 {
		if c.banks != nil {
			return c.banks, nil
		}
		if err == nil {
			err = fmt.Errorf("mono listed no institutions")
		}
		return nil, fmt.Errorf("list institutions: %w", err)
	}
	banks := make([]*Bank, 0, len(list))
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
	c.banks, c.fetched = banks, now
	return banks, nil
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
