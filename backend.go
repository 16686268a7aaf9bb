package main

import (
	"context"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/outbox"
	"github.com/ussdlink/ussdlink/partner"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/sms"
	"github.com/ussdlink/ussdlink/store"
	"github.com/ussdlink/ussdlink/store/postgres"
)

// backend is the store the gateway runs on, whichever it is: what every
// consumer declares it needs, what the sweeper deletes with, and Close.
type backend interface {
	menus.Store
	partner.Store
	partner.MonoEvents
	sms.ConversationStore
	sms.InboundStore
	OptedOut(ctx context.Context, phone string) (bool, error)

	Sweep(ctx context.Context, now time.Time, max int) (int, error)
	SweepFailures(ctx context.Context, before time.Time, max int) (int, error)
	SweepMonoEvents(ctx context.Context, before time.Time, max int) (int, error)
	SweepMonoUpdates(ctx context.Context, before time.Time, max int) (int, error)
	SweepInbound(ctx context.Context, before time.Time, max int) (int, error)
	SweepAnswers(ctx context.Context, before time.Time, max int) (int, error)
	SweepConversations(ctx context.Context, now time.Time, max int) (int, error)
	SweepInvites(ctx context.Context, now, partnersBefore time.Time, max int) (int, error)
	BucketSizes(ctx context.Context) (map[string]int, error)
	// Writable reports whether the store takes writes (for /readyz).
	Writable(ctx context.Context) error
	// FunnelCounts reads the drop-off funnel's daily counters of one
	// grouping (link.FunnelGroupings) from since's UTC day on.
	FunnelCounts(ctx context.Context, since time.Time, by string) ([]link.FunnelCount, error)
	// PhoneLanguage reads the language a phone chose, "" when none.
	PhoneLanguage(ctx context.Context, phone string) (string, error)
	Close() error
}

// queue is one durable queue as the workers and the sweeper use it.
type queue interface {
	outbox.Queue
	SweepDeadLetters(ctx context.Context, before time.Time, max int) (int, error)
	// Depth is what the queue holds, for metrics.
	Depth(ctx context.Context) (messages int, oldest time.Time, err error)
}

// openBackend opens the configured store: PostgreSQL at [store] url, or
// the bbolt file at [store] path; and its two queues.
func (m *Main) openBackend(ctx context.Context, cfg Config, sealer *seal.Sealer) error {
	updates := partner.LinkUpdates(cfg.Partner.emits())
	if cfg.Store.postgres() {
		db, err := postgres.Open(ctx, cfg.Store.URL, sealer, postgres.WithMaxConns(cfg.Store.MaxConns),
			postgres.WithLinkUpdates(updates), postgres.WithFunnel(menus.SweptFunnel(cfg.USSD.networks())))
		if err != nil {
			return err
		}
		m.db, m.webhookQueue, m.textQueue = db, db.Webhooks(), db.Texts()
		m.shared = &shared{locker: db.Locks(), leases: db.Leases(), leader: db.Leader()}
		m.Log.Info().Msg("store: PostgreSQL, shared with every instance on it")
		return nil
	}
	db, err := store.Open(cfg.Store.Path, sealer, store.WithBatchDelay(cfg.Store.BatchDelay.Duration),
		store.WithLinkUpdates(updates), store.WithFunnel(menus.SweptFunnel(cfg.USSD.networks())))
	if err != nil {
		return err
	}
	m.db, m.webhookQueue, m.textQueue = db, db.Webhooks(), db.Texts()
	return nil
}

// shared is how instances on one store coordinate: a session's lock, the
// leases on background work, and the one instance doing housekeeping.
// Nil on the embedded store, which one process holds alone.
type shared struct {
	locker menus.Locker
	leases interface {
		menus.Leases
		SweepLeases(ctx context.Context, before time.Time, max int) (int, error)
	}
	leader interface {
		Lead(ctx context.Context) (bool, error)
		Resign() error
	}
}
