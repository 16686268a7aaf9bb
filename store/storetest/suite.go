// Package storetest is the store contract: what any backend of the
// gateway's state (bbolt today, PostgreSQL next) must do, as a suite of
// tests it must pass. The contract is stated in the domain types of package
// link only — Store and Queue below restate what the gateway's consumers
// (the conversation engine, the partner API and webhook receivers, the
// text-message conversation, the outbox workers and the sweeper) ask of the
// store — so this package imports no backend and no consumer.
//
// A backend uses it from one of its tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Backend {
//			db := openEmptyStoreFor(t) // opened with storetest.LinkUpdates and storetest.FunnelOf
//			t.Cleanup(func() { db.Close() })
//			return storetest.Backend{Store: db, Webhooks: db.Webhooks(), Texts: db.Texts()}
//		})
//	}
//
// Run opens a fresh, empty backend for every behaviour, so behaviours never
// see each other's data. A backend known to break a behaviour names it in a
// Known, which skips it (saying why) until the bug is fixed. Every time the suite hands a backend is fixed (a
// base time plus offsets, in whole microseconds: what PostgreSQL keeps), and
// nothing waits on the clock. Times are compared as instants: a backend may
// give them back in another zone.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// Sessions is what the conversation engine keeps of its sessions: records,
// the phone's latest one, the login lockout and its reservations, and the
// links its hops make. A record's Data is JSON (the conversation's own
// encoding): it comes back as the same JSON value, not necessarily the same
// bytes. Its Secrets come back byte for byte, and are never stored as they
// are. Phones are one phone with or without their "+" (link.PhoneKey).
type Sessions interface {
	// Session returns the stored session, or link.ErrNoSession.
	Session(ctx context.Context, id string) (*link.SessionRecord, error)
	// Commit writes everything one hop decided in one transaction, durable
	// before it returns: both records, the link, the events and texts, the
	// login failure, the released reservations, and the invitation (only
	// if it is still pending) with its events.
	Commit(ctx context.Context, c link.Change) error
	// Latest returns the phone's most recently written session, or
	// link.ErrNoSession.
	Latest(ctx context.Context, phone string) (*link.SessionRecord, error)
	// LoginFailures counts the phone's refused logins and unreleased
	// reservations since a time.
	LoginFailures(ctx context.Context, phone string, since time.Time) (int, error)
	// ReserveAttempt atomically records one more attempt at at, unless the
	// phone has max of them since a time; the key releases it.
	ReserveAttempt(ctx context.Context, phone string, since, at time.Time, max int) (key string, ok bool, err error)
	// Link returns the link of a Mono account id, or false.
	Link(ctx context.Context, accountID string) (*link.Link, bool, error)
	// LinksByPhone returns the links made from a phone, in account id order.
	LinksByPhone(ctx context.Context, phone string) ([]link.Link, error)
}

// Invites is what the conversation and the partner API keep of
// invitations and of the API's idempotent answers.
type Invites interface {
	// CreateInvite stores a new invitation, giving it (the caller's value
	// too) a code of digits that no pending invitation holds.
	CreateInvite(ctx context.Context, inv *link.Invite, digits int, now time.Time) error
	// CreateInviteAnswered is CreateInvite that also queues the texts
	// built from the invitation with its code and stores, under key (none
	// when empty), the answer built from it: all of it or none.
	CreateInviteAnswered(ctx context.Context, inv *link.Invite, digits int, now time.Time,
		texts func(*link.Invite) []link.Text, key string, answer func(*link.Invite) (link.Answer, error)) error
	// Invite returns an invitation by id, or link.ErrNoInvite.
	Invite(ctx context.Context, id string) (*link.Invite, error)
	// InviteByCode returns the pending invitation holding a code, or
	// link.ErrNoInvite.
	InviteByCode(ctx context.Context, code string) (*link.Invite, error)
	// PendingInvite returns the phone's most recent invitation usable at
	// now, or link.ErrNoInvite.
	PendingInvite(ctx context.Context, phone string, now time.Time) (*link.Invite, error)
	// InvitesByPhone returns a phone's invitations, oldest first.
	InvitesByPhone(ctx context.Context, phone string) ([]link.Invite, error)
	// InvitesByReference returns the invitations carrying a partner
	// reference, in id order.
	InvitesByReference(ctx context.Context, ref string) ([]link.Invite, error)
	// ReauthOf returns the account's latest reauthorisation invitation, or
	// link.ErrNoInvite.
	ReauthOf(ctx context.Context, accountID string) (*link.Invite, error)
	// ClaimInvite makes one session the only one following an invitation,
	// atomically: link.ErrNoInvite when none is usable, link.ErrInviteInUse
	// when the usable ones are held by live sessions.
	ClaimInvite(ctx context.Context, c link.InviteClaim) (*link.Invite, error)
	// Idempotent returns the answer stored under an idempotency key.
	Idempotent(ctx context.Context, key string) (*link.Answer, bool, error)
	// SaveAnswer stores an answer under an idempotency key, replacing one.
	SaveAnswer(ctx context.Context, key string, a link.Answer) error
}

// Mono is what Mono's webhook receiver keeps: each event applied once, in
// one transaction, and the accounts' latest updates for links still being
// made.
type Mono interface {
	// MonoEvent applies an event once: false, and nothing done, when its
	// id was applied before.
	MonoEvent(ctx context.Context, eventID string, at time.Time, accountID string,
		apply func(linked *link.Link, reauth *link.Invite) link.MonoOutcome) (bool, error)
	// LatestUpdate returns the account's remembered account_updated.
	LatestUpdate(ctx context.Context, accountID string) (*link.MonoUpdate, bool, error)
}

// Texting is what the text-message conversation and its inbound webhooks
// keep: opt-outs, each phone's conversation, the texts it queues, and the
// inbound message ids already taken.
type Texting interface {
	OptOut(ctx context.Context, phone string, out bool, at time.Time) error
	OptedOut(ctx context.Context, phone string) (bool, error)
	EnqueueTexts(ctx context.Context, texts ...link.Text) error
	Conversation(ctx context.Context, phone string) (link.Conversation, bool, error)
	// SetConversation records a phone's conversation; an empty session ends it.
	SetConversation(ctx context.Context, phone string, c link.Conversation) error
	// FirstDelivery records an inbound message id and reports whether it
	// is the first time it arrives.
	FirstDelivery(ctx context.Context, provider, id string, at time.Time) (bool, error)
	// ForgetDelivery forgets an inbound message id, so its retry is taken.
	ForgetDelivery(ctx context.Context, provider, id string) error
}

// Retention is what the sweeper calls: each forgets, at most max at a
// time, what is older than its cut-off, and returns how many it forgot.
// BucketSizes tells an operator how much each kind of record holds.
type Retention interface {
	// Sweep deletes the sessions whose purge time is before now (and
	// erases the secrets that lapsed before now from those that stay),
	// counting each in the funnel as the backend's hook decides.
	Sweep(ctx context.Context, now time.Time, max int) (int, error)
	SweepFailures(ctx context.Context, before time.Time, max int) (int, error)
	SweepMonoEvents(ctx context.Context, before time.Time, max int) (int, error)
	SweepMonoUpdates(ctx context.Context, before time.Time, max int) (int, error)
	SweepInbound(ctx context.Context, before time.Time, max int) (int, error)
	SweepAnswers(ctx context.Context, before time.Time, max int) (int, error)
	// SweepConversations deletes the conversations that expired before now.
	SweepConversations(ctx context.Context, now time.Time, max int) (int, error)
	// SweepInvites deletes hand-over invitations (ids "hnd_…") whose use
	// ended before handoversBefore and the partner's before partnersBefore.
	SweepInvites(ctx context.Context, handoversBefore, partnersBefore time.Time, max int) (int, error)
	// BucketSizes counts what each kind of record holds, by name: all
	// zero once everything has passed its retention and been swept.
	BucketSizes(ctx context.Context) (map[string]int, error)
}

// Funnel is what the drop-off funnel's report reads: the daily counters
// that the commits ending sessions (link.Change.Funnel) and the sweeper
// (through the backend's funnel hook, FunnelOf in this suite) add to.
type Funnel interface {
	// FunnelCounts returns the counters of one grouping (one of
	// link.FunnelGroupings; any other is an error) from since's UTC day
	// on, in (day, value, screen) order: Left nil where no session ended,
	// Seconds with a bucket per link.FunnelSecondsBounds and one more.
	FunnelCounts(ctx context.Context, since time.Time, by string) ([]link.FunnelCount, error)
}

// Outbox is what a worker needs of a durable queue (outbox.Queue): the
// partner webhook deliverer takes the store itself as its queue, so a Store
// is one too, of its webhooks.
type Outbox interface {
	// Due returns up to max messages due by now, in (due time, queue
	// order), of each ordering key only the earliest queued.
	Due(ctx context.Context, now time.Time, max int) ([]link.Message, error)
	// NextDue returns when the earliest message Due would hand out is due.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Delivered removes a message.
	Delivered(ctx context.Context, id string) error
	// Reschedule records a failed attempt and when to try again.
	Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	// GiveUp moves a message to the dead letters.
	GiveUp(ctx context.Context, id string, lastErr string) error
}

// Queue is one durable queue as a whole: its worker's methods, the dead
// letters an operator reads, and their retention.
type Queue interface {
	Outbox
	DeadLetters(ctx context.Context) ([]link.Message, error)
	// SweepDeadLetters deletes dead letters created before a time.
	SweepDeadLetters(ctx context.Context, before time.Time, max int) (int, error)
}

// Store is every method the gateway calls on its store.
type Store interface {
	Sessions
	Invites
	Mono
	Texting
	Retention
	Funnel
	Languages
	FirstLooks
}

// Backend is one freshly opened, empty store under test.
type Backend struct {
	Store Store
	// Webhooks and Texts are the store's two durable queues: the partner's
	// webhooks and texts.
	Webhooks, Texts Queue
	// Reopen, when set, closes the store and opens its data again, as a
	// restart does; the Backend it was called on is not used again.
	// Behaviours about durability are skipped without it.
	Reopen func(t *testing.T) Backend
	// Raw, when set, returns everything the backend has written, as it
	// lies on disk, for the suite to look for secrets in plain text. It
	// must show what is stored as it is (the suite checks that it finds a
	// value it wrote in the clear). Without it that behaviour is skipped.
	Raw func(t *testing.T) []byte
}

// Opened is the Backend of a store a test has just opened: it is closed
// when the test ends, or by Reopen, which then calls open for the same
// data; raw, when set, is its Raw.
func Opened(t *testing.T, db Store, closer func() error, webhooks, texts Queue,
	open func(t *testing.T) Backend, raw func(t *testing.T) []byte) Backend {
	t.Helper()
	closed := false
	closeDB := func() error {
		if closed {
			return nil
		}
		closed = true
		return closer()
	}
	t.Cleanup(func() {
		if err := closeDB(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return Backend{Store: db, Webhooks: webhooks, Texts: texts, Raw: raw,
		Reopen: func(t *testing.T) Backend {
			t.Helper()
			if err := closeDB(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t)
		}}
}

// PolicyWindow is the window of LinkUpdates, the suite's own policy: a new
// link takes a remembered update received at most this long before its
// Linked time. It is not the gateway's window, and longer than it, so the
// suite sees a backend apply the policy's decision rather than a rule of
// its own.
const PolicyWindow = 40 * time.Minute

// PoisonReference, as a link's reference, makes LinkUpdates take the update
// with an event no backend can encode: the suite uses it to make a commit
// fail midway through its transaction.
const PoisonReference = "storetest-poison"

// LinkUpdates is the policy a backend under test asks whether a new link
// takes its account's remembered update (store.WithLinkUpdates): it takes
// one received within PolicyWindow before the link's Linked time (or
// since), announced by a DATA_STATUS about the link, keyed by its session.
// It names that event even when it declines, so that the suite sees a
// backend queue nothing for an update not taken. Open every backend handed
// to Run with it.
func LinkUpdates(l *link.Link, u link.MonoUpdate) (take bool, events []link.Event) {
	data := map[string]any{"account_id": l.AccountID, "phone": l.Phone, "reference": l.Reference, "data_status": u.DataStatus}
	if l.Reference == PoisonReference {
		data["poison"] = func() {} // no encoding holds a func
	}
	take = !u.Received.Before(l.Linked.Add(-PolicyWindow))
	return take, []link.Event{{ID: "msg_status_" + l.SessionID, Type: link.TypeDataStatus, Timestamp: l.Linked, Data: data}}
}

// behaviour is one thing every backend must do, checked on backends it
// opens itself (one, or one per case).
type behaviour struct {
	name string
	run  func(t *testing.T, open opener)
}

// opener opens a fresh, empty backend for one test.
type opener func(t *testing.T) Backend

// Known names a behaviour a backend is known to break today, and why: Run
// skips it, saying so, until the backend is fixed and the entry removed.
type Known struct {
	Behaviour string // the behaviour's name, as its subtest is named (with spaces)
	Why       string
}

// Run checks every behaviour of the contract, each as a subtest named for
// what must hold, grouped by area, on backends open gives: a fresh, empty
// one each time it is called. A behaviour named in known is skipped; a
// known entry that names none fails Run, so that none outlives its bug.
func Run(t *testing.T, open func(t *testing.T) Backend, known ...Known) {
	skip := map[string]string{}
	for _, k := range known {
		skip[k.Behaviour] = k.Why
	}
	checked := func(t *testing.T) Backend {
		t.Helper()
		b := open(t)
		if b.Store == nil || b.Webhooks == nil || b.Texts == nil {
			t.Fatalf("the backend opened has no store or queue: %+v", b)
		}
		return b
	}
	for _, area := range []struct {
		name       string
		behaviours []behaviour
	}{
		{"sessions", sessionBehaviours()},
		{"lockout", lockoutBehaviours()},
		{"sweeping sessions", sweepBehaviours()},
		{"invitations", inviteBehaviours()},
		{"claims", claimBehaviours()},
		{"idempotency", answerBehaviours()},
		{"mono", monoBehaviours()},
		{"queues", queueBehaviours()},
		{"texting", textingBehaviours()},
		{"retention", retentionBehaviours()},
		{"funnel", funnelBehaviours()},
		{"languages", languageBehaviours()},
		{"first looks", firstLookBehaviours()},
		{"durability", durabilityBehaviours()},
	} {
		t.Run(area.name, func(t *testing.T) {
			for _, b := range area.behaviours {
				t.Run(b.name, func(t *testing.T) {
					if why, ok := skip[b.name]; ok {
						t.Skipf("known to fail on this backend: %s", why)
					}
					b.run(t, checked)
				})
			}
		})
		for _, b := range area.behaviours {
			delete(skip, b.name)
		}
	}
	for name := range skip {
		t.Errorf("Run was told of a known failure of %q, which is no behaviour of the contract", name)
	}
}

// each runs one behaviour on a fresh backend.
func each(name string, run func(t *testing.T, b Backend)) behaviour {
	return behaviour{name: name, run: func(t *testing.T, open opener) { run(t, open(t)) }}
}
