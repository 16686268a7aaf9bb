package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ussdlink/ussdlink/admin"
	"github.com/ussdlink/ussdlink/metrics"
	"github.com/ussdlink/ussdlink/store"
	"github.com/ussdlink/ussdlink/ussd"
	"github.com/ussdlink/ussdlink/webphone"
)

// startAdmin serves the admin listener on [admin] addr: metrics (with the
// engine's running work and the queues' depths), readiness, the log level
// and, with [admin] pprof, the runtime profiles.
func (m *Main) startAdmin(cfg Config, mono institutionLister) error {
	m.metrics.JobsRunning(m.engine.Running)
	queues := map[string]queue{"webhooks": m.webhookQueue, "texts": m.textQueue}
	m.metrics.Queues(m.Now, func(ctx context.Context, name string) (metrics.Depth, error) {
		n, oldest, err := queues[name].Depth(ctx)
		return metrics.Depth{Messages: n, Oldest: oldest}, err
	}, "webhooks", "texts")
	if w, ok := m.db.(writerStats); ok {
		m.metrics.StoreWriter(func() metrics.StoreWriterStats {
			s := w.WriterStats()
			return metrics.StoreWriterStats{Groups: s.Groups, Writes: s.Writes, Busy: s.Busy}
		})
	}
	h := admin.Handler(admin.Options{
		Gatherer: m.metrics.Registry,
		Checks: []admin.Check{
			{Name: "store", Run: m.db.Writable},
			{Name: "mono", Run: monoReachable(mono, m.Now)},
			{Name: "workers", Run: m.workersRunning},
		},
		Level: m.level,
		Pprof: cfg.Admin.Pprof,
		Phone: m.phone(cfg),
		Log:   m.Log.With().Str("component", "admin").Logger(),
	})
	srv, l, err := m.serveSide("[admin] addr", cfg.Admin.Addr, h)
	if err != nil {
		return err
	}
	m.admin, m.adminListener = srv, l
	m.Log.Info().Str("addr", l.Addr().String()).Msg("admin listener: /metrics, /readyz, /phone/, /log/level")
	return nil
}

// writerStats is a store with one writer that counts its work: the bbolt
// store.
type writerStats interface{ WriterStats() store.WriterStats }

// AdminURL is the admin listener's base URL, or "" when it is off.
func (m *Main) AdminURL() string {
	if m.adminListener == nil {
		return ""
	}
	return "http://" + m.adminListener.Addr().String()
}

// monoReachableFor is how long a successful look at Mono stands for
// /readyz, so a prober calling every few seconds costs Mono one call a
// minute at most... unless it fails.
const monoReachableFor = 30 * time.Second

// monoReachable checks that Mono answers with its institution list. A
// success stands for monoReachableFor; a failure is looked at again on the
// next probe.
func monoReachable(mono institutionLister, now func() time.Time) func(ctx context.Context) error {
	var mu sync.Mutex
	var okAt time.Time
	return func(ctx context.Context) error {
		mu.Lock()
		fresh := !okAt.IsZero() && now().Sub(okAt) < monoReachableFor
		mu.Unlock()
		if fresh {
			return nil
		}
		if _, err := mono.Institutions(ctx); err != nil {
			return fmt.Errorf("mono unreachable: %w", err)
		}
		mu.Lock()
		okAt = now()
		mu.Unlock()
		return nil
	}
}

// workersRunning reports a background worker that has stopped while the
// gateway runs (it logged why).
func (m *Main) workersRunning(context.Context) error {
	var stopped []string
	for _, w := range m.workers {
		select {
		case <-w.done:
			stopped = append(stopped, w.name)
		default:
		}
	}
	if len(stopped) > 0 {
		return fmt.Errorf("workers stopped: %v", stopped)
	}
	return nil
}

// phone is the browser phone the admin listener serves: it dials the
// callback listener's real routes, with the callback token when one is
// set, and shows the sandbox's texts when the sandbox sends them.
func (m *Main) phone(cfg Config) http.Handler {
	var dialects []string
	for _, d := range ussd.Dialects() {
		dialects = append(dialects, d.Name())
	}
	return webphone.Handler(webphone.Options{
		Callbacks: m.URL(), CallbackToken: cfg.USSD.CallbackToken, ServiceCode: cfg.USSD.ServiceCode,
		ScreenLimit: cfg.USSD.ScreenLimit, Dialects: dialects,
		Inbox: m.smsSandbox != nil && m.sandboxMono != nil,
		Log:   m.Log.With().Str("component", "webphone").Logger(),
	})
}
