package menus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/catalog"
	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/keyed"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/phone"
	"github.com/ussdlink/ussdlink/screen"
)

// Store keeps sessions and links. Commit must make the change durable before
// it returns: the reply is sent only after.
type Store interface {
	// Session returns the stored session, or link.ErrNoSession.
	Session(ctx context.Context, id string) (*link.SessionRecord, error)
	// Commit writes everything one hop decided, atomically.
	Commit(ctx context.Context, c link.Change) error
	// Latest returns the phone's most recent session, or link.ErrNoSession.
	Latest(ctx context.Context, phone string) (*link.SessionRecord, error)
	// LoginFailures counts the refused bank logins of a phone since a time
	// (attempts reserved and not yet released count as refused).
	LoginFailures(ctx context.Context, phone string, since time.Time) (int, error)
	// ReserveAttempt atomically reserves one guess at a secret (a login,
	// an OTP, an answer) for a phone at a time: ok is false, and nothing
	// is written, when the phone already has max refused or reserved
	// attempts since a time. A reservation counts as refused until a
	// commit releases it (Change.Release), so however many sessions of one
	// phone guess at once, at most max guesses reach the bank.
	ReserveAttempt(ctx context.Context, phone string, since, at time.Time, max int) (key string, ok bool, err error)
	// Invite returns an invitation by id; InviteByCode the pending one
	// holding a code; PendingInvite a phone's most recent usable one. Each
	// returns ErrNoInvite when there is none.
	Invite(ctx context.Context, id string) (*link.Invite, error)
	InviteByCode(ctx context.Context, code string) (*link.Invite, error)
	PendingInvite(ctx context.Context, phone string, now time.Time) (*link.Invite, error)
	// ClaimInvite makes one session the only one following an invitation,
	// atomically; ErrNoInvite when none is usable, ErrInviteInUse when
	// another live session holds it.
	ClaimInvite(ctx context.Context, c link.InviteClaim) (*link.Invite, error)
	// Link returns the link of a Mono account id, or false.
	Link(ctx context.Context, accountID string) (*link.Link, bool, error)
	// CreateInvite stores a new invitation with a fresh code of digits.
	CreateInvite(ctx context.Context, inv *link.Invite, digits int, now time.Time) error
	// PhoneLanguage is the language a phone chose (Change.Language), ""
	// when none.
	PhoneLanguage(ctx context.Context, phone string) (string, error)
}

// Mono is the part of Mono's Partners API a conversation drives, in
// whichever version the client speaks: the conversation does not know.
type Mono interface {
	Institutions(ctx context.Context) ([]mono.Institution, error)
	CreateSession(ctx context.Context, req mono.SessionRequest) (*mono.Session, error)
	Login(ctx context.Context, sessionID string, fields map[string]string) (*mono.Step, error)
	Commit(ctx context.Context, sessionID string, body map[string]any) (*mono.Step, error)
	ChooseAccount(ctx context.Context, sessionID string, index int, a mono.Account) (*mono.Step, error)
	Exchange(ctx context.Context, code string) (string, error)
	Account(ctx context.Context, id string) (*mono.AccountDetails, error)
	// Reauthorise starts logging a linked account in again; Relogin
	// answers one that asked for the bank's login again.
	Reauthorise(ctx context.Context, accountID string) (*mono.Reauthorisation, error)
	Relogin(ctx context.Context, sessionID string, fields map[string]string) (*mono.Step, error)
}

// Config tunes an Engine. What it leaves unset (zero) is taken from
// DefaultConfig.
type Config struct {
	ScreenLimit   int           // characters after CON/END
	SessionTTL    time.Duration // inactivity before a session expires
	MaxTries      int           // refused logins or answers before giving up
	BankTTL       time.Duration // how long the institution list is cached
	TranscriptKey []byte        // keys the transcript hash; must be secret
	// PreviousTranscriptKeys check transcripts hashed before the seal key
	// was rotated.
	PreviousTranscriptKeys [][]byte
	HopBudget              time.Duration // a reply leaves within this, Mono or not
	ResumeWindow           time.Duration // a dropped session can be continued this long
	SecretTTL              time.Duration // typed values are kept sealed at most this long
	// MaxLoginFailures refused logins or answers of one phone within
	// Lockout pause its logins, with no Mono call, until Lockout has passed.
	MaxLoginFailures int
	Lockout          time.Duration
	// LogPhone is how a phone number appears in logs.
	LogPhone func(string) string
	// ServiceCode is the short code users dial ("*384*123#"); a code dialled
	// after it ("*384*123*7#") selects a shortcut.
	ServiceCode string
	// Shortcuts are deep-dial codes that open one institution directly.
	Shortcuts map[string]Shortcut
	// RepeatWindow is how soon the same input again, from a dialect that
	// sends neither transcript nor hop number, counts as a repeated
	// delivery rather than a new input.
	RepeatWindow time.Duration
	// Emits says which partner events to emit (nil: none); Notify is called
	// after a commit that enqueued some, so delivery can start at once.
	Emits  func(eventType string) bool
	Notify func()
	// Texts says which kinds of text message to queue (nil: none);
	// NotifyTexts wakes their sender.
	Texts       func(kind string) bool
	NotifyTexts func()
	// LateAfter is how long after its last hop a session's user is taken to
	// have left: an outcome settled later is sent by text.
	LateAfter time.Duration
	// Locker, when set, also takes each session's lock across instances;
	// Leases, when set, let background Mono work be taken over by another
	// instance once the one running it is gone (its lease lapsed after
	// LeaseTTL). Both nil: this process is the only one.
	Locker   Locker
	Leases   Leases
	LeaseTTL time.Duration
	// SMSCredentials lets an SMS conversation ask for credentials; off, it
	// hands over to USSD with a code to dial, valid HandoverTTL (10m).
	SMSCredentials bool
	HandoverTTL    time.Duration
	// CustomerName and CustomerEmail are templates of the customer a Mono
	// v2 session is for when no invitation names one ({phone} is the
	// phone's E.164 digits), so a USSD user is never asked for an e-mail
	// address. See DefaultCustomerName, DefaultCustomerEmail.
	CustomerName, CustomerEmail string
	// Observer, when set, hears what conversations did (for metrics).
	Observer Observer
	// Words is the catalogue every screen is said in (nil: the embedded
	// one); Languages are those offered, in order (none: the default
	// alone; one: no choice is asked), and DefaultLanguage the one
	// preferred until a phone chooses (lang.Spoken decides what is
	// spoken).
	Words           *lang.Catalogue
	Languages       []string
	DefaultLanguage string
	// Networks are network codes the operator names (its [ussd]
	// screen-limits): the funnel groups by them and by the known ones
	// (link.KnownNetwork), and counts any other as "other".
	Networks []string
	// SealedJSON writes sealed values as JSON, the form versions before
	// their MessagePack one read (a rolling upgrade on a shared store);
	// both are read always.
	SealedJSON bool
}

// FirstLooker is a Store that reads at once what a new session's first
// screen asks of its phone (link.FirstLook: the lockout, the language, an
// invitation to claim, the latest session to resume), each as its own read
// would: a remote store then pays one round trip for the four. The
// engine asks each on its own of a store without it.
type FirstLooker interface {
	FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error)
}

// DefaultConfig is the engine's configuration unless told otherwise: the
// one definition of each default, which the gateway's configuration
// starts from too.
func DefaultConfig() Config {
	return Config{
		ScreenLimit:      160,
		SessionTTL:       180 * time.Second,
		MaxTries:         3,
		BankTTL:          time.Hour,
		HopBudget:        4 * time.Second,
		ResumeWindow:     10 * time.Minute,
		SecretTTL:        2 * time.Minute,
		MaxLoginFailures: 3,
		Lockout:          30 * time.Minute,
		LogPhone:         phone.Mask,
		RepeatWindow:     2 * time.Second,
		LateAfter:        time.Minute,
		HandoverTTL:      10 * time.Minute,
		LeaseTTL:         15 * time.Second,
		CustomerName:     DefaultCustomerName,
		CustomerEmail:    DefaultCustomerEmail,
	}
}

// withDefaults fills what c leaves unset (zero or negative) from
// DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.ScreenLimit, d.ScreenLimit)
	orDefault(&c.MaxTries, d.MaxTries)
	orDefault(&c.MaxLoginFailures, d.MaxLoginFailures)
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{
		{&c.SessionTTL, d.SessionTTL}, {&c.BankTTL, d.BankTTL}, {&c.HopBudget, d.HopBudget},
		{&c.ResumeWindow, d.ResumeWindow}, {&c.SecretTTL, d.SecretTTL}, {&c.Lockout, d.Lockout},
		{&c.RepeatWindow, d.RepeatWindow}, {&c.LateAfter, d.LateAfter}, {&c.HandoverTTL, d.HandoverTTL},
		{&c.LeaseTTL, d.LeaseTTL},
	} {
		orDefault(f.v, f.d)
	}
	if c.LogPhone == nil {
		c.LogPhone = d.LogPhone
	}
	if c.CustomerName == "" {
		c.CustomerName = d.CustomerName
	}
	if c.CustomerEmail == "" {
		c.CustomerEmail = d.CustomerEmail
	}
	return c
}

// orDefault sets *v to d when it is not positive.
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Locker serialises one session's hops across the instances sharing a
// store (PostgreSQL's advisory locks): within one process the engine's own
// locks do it, and with one instance nothing more is needed.
type Locker interface {
	// LockContext takes key's lock, waiting until it is free or ctx ends.
	LockContext(ctx context.Context, key string) (unlock func(), err error)
}

// SessionLocker is a Locker that takes a session's lock in step with the
// store (PostgreSQL's): the lock is taken along with the first read made
// with the context it returns, and let go along with the commit made with
// it, so a hop costs the database two round trips instead of four. The
// engine makes every read and commit of the locked session with that
// context; the lock it takes is the one LockContext takes for
// "session:"+id.
type SessionLocker interface {
	Locker
	LockSession(ctx context.Context, id string) (context.Context, func(), error)
}

// Leases say which instance runs a piece of background work, for as long
// as it keeps renewing its lease: shared by the instances of one store.
type Leases interface {
	// Hold takes key's lease for owner for ttl, or renews it; false when
	// another owner holds it and it has not lapsed.
	Hold(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// Release lets owner's lease of key go at once.
	Release(ctx context.Context, key, owner string) error
}

// Shortcut opens an institution (and optionally one auth method) directly,
// like the Connect widget's selectedInstitution.
type Shortcut struct {
	Institution string
	AuthMethod  string
	Language    string // spoken (and remembered for the phone) when set
}

// Engine runs conversations. It is safe for concurrent use: hops of one
// session are serialised, hops of different sessions run in parallel.
type Engine struct {
	cfg   Config
	words *lang.Catalogue
	// offered are the languages offered, spoken the default, nav the
	// navigation's words in each (see offer).
	offered []string
	spoken  string
	nav     map[string]screen.Words
	store   Store
	mono    Mono
	now     func() time.Time
	log     zerolog.Logger
	marker  marker
	banks   *catalog.Cache[[]*Bank]
	locks   keyed.Mutex // one per session: its hops are taken one at a time
	// machines are built machines, reused from hop to hop: building one
	// from the transition table costs more than the hop's event.
	machines sync.Pool
	jobs     jobs
	base     context.Context // lives as long as the engine: background Mono work runs under it
	stop     context.CancelFunc

	unauthorized atomic.Bool // Mono refused the key: logged loudly once
	owner        string      // this instance, as the owner of leases
}

// NewEngine returns an Engine over its dependencies. now is the clock.
func NewEngine(cfg Config, store Store, m Mono, now func() time.Time, log zerolog.Logger) *Engine {
	cfg = cfg.withDefaults()
	base, stop := context.WithCancel(context.Background())
	e := &Engine{
		base:   base,
		stop:   stop,
		cfg:    cfg,
		store:  store,
		mono:   m,
		now:    now,
		log:    log,
		marker: newMarker(cfg.TranscriptKey, cfg.PreviousTranscriptKeys...),
		owner:  newOwner(),
		words:  cfg.Words,
	}
	if e.words == nil {
		e.words = defaultWords()
	}
	e.offer()
	e.banks = catalog.New(base, e.fetchBanks, cfg.BankTTL, bankBackoff, now, func(err error) {
		log.Warn().Err(err).Msg("institutions unavailable")
	})
	return e
}

// Handle answers one hop: it loads the session under its lock, recognises a
// repeated callback, lets the journey take the hop, and commits the new
// state before returning the reply.
func (e *Engine) Handle(ctx context.Context, hop link.Hop) (link.Reply, error) {
	arrived := time.Now()
	if err := validate(hop); err != nil {
		return link.Reply{}, err
	}
	base := ctx // the caller's: the session is read and committed with the lock's
	ctx, unlock, err := e.lockSession(base, hop.SessionID)
	if err != nil {
		return link.Reply{}, err
	}
	defer func() { unlock() }()
	now := e.now()
	deadline := arrived.Add(e.waitBudget())
	l, err := e.load(ctx, hop, now)
	if err == nil && l.answered == nil && e.workElsewhere(ctx, l) {
		// Another instance runs this session's Mono work: its outcome is
		// committed under the session's lock, so the lock is let go while
		// this hop waits for it, within the budget.
		unlock()
		unlock = func() {}
		e.awaitSettled(base, l.s, deadline)
		if ctx, unlock, err = e.lockSession(base, hop.SessionID); err != nil {
			unlock = func() {}
			return link.Reply{}, err
		}
		l, err = e.load(ctx, hop, now)
	}
	if err != nil || l.answered != nil {
		return deref(l.answered), err
	}
	from, outcome := l.s.State, link.OutcomeInput
	if l.s.Hops == 0 || l.restarted {
		from, outcome = "", link.OutcomeNew
	}
	bounded, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	t := e.newTurn(ctx, l.s, now, deadline, bounded)
	defer t.release()
	reply := t.take(hop, l.input, l.restarted)
	reply.Screen = t.s.State
	t.s.shown(now)
	e.remember(l.s, hop, reply, now)
	if err := e.commit(ctx, t.change(), t.s, t.retired); err != nil {
		return link.Reply{}, fmt.Errorf("commit session: %w", err)
	}
	t.committed()
	reply.From, reply.Outcome = from, outcome
	return reply, nil
}

// Observer hears what conversations did, once it is committed: sessions
// that ended (why, and the screen they ended on), accounts linked or
// reauthorised, and logins refused by the lockout. Metrics implement it.
type Observer interface {
	SessionEnded(reason, screen string)
	Linked(institution, kind string)
	Refused(reason string)
}

// Running is how much Mono work is under way on this instance, for metrics.
func (e *Engine) Running() int {
	e.jobs.mu.Lock()
	defer e.jobs.mu.Unlock()
	return len(e.jobs.live)
}

// loaded is a hop's session as the engine found it.
type loaded struct {
	s         *Session
	input     string      // this hop's input
	restarted bool        // started again: what came before cannot be read
	answered  *link.Reply // the hop is answered without a turn (a repeat, a session over)
}

// load finds the hop's session, or opens one, and works out its input. A
// repeated callback is answered with the reply it had; a hop after the
// session is over, with a polite END.
func (e *Engine) load(ctx context.Context, hop link.Hop, now time.Time) (loaded, error) {
	s, err := e.session(ctx, hop.SessionID)
	switch {
	case errors.Is(err, link.ErrNoSession):
		return loaded{s: e.open(hop, now)}, nil
	case err != nil:
		return loaded{}, fmt.Errorf("load session: %w", err)
	case s.Phone != hop.Phone:
		return loaded{}, &link.HopError{Reason: "phone number differs from the session's"}
	}
	if s.SecretsLost {
		e.log.Warn().Str("session", s.ID).Msg("sealed values cannot be opened (seal key lost?): what needed them is asked again")
	}
	input, repeat, err := e.input(s, hop, now)
	switch {
	case errors.Is(err, ErrUncheckable):
		// The seal key was lost: nothing can tell this hop's input from
		// the transcript. The conversation starts again, politely.
		e.log.Warn().Str("session", s.ID).Msg("transcript hashed under a key no longer held (seal key lost?): starting the session again")
		return loaded{s: e.open(hop, now), restarted: true}, nil
	case err != nil:
		return loaded{}, &link.HopError{Reason: err.Error()}
	case repeat:
		r := s.Reply
		r.From, r.Outcome = s.State, link.OutcomeRepeat
		return loaded{answered: &r}, nil
	case (s.Done() || s.Closed != "") && !s.Unseen:
		return loaded{answered: &link.Reply{Text: e.words.Text(s.Lang, textSessionOver), End: true, Screen: s.State, From: s.State, Outcome: link.OutcomeOver}}, nil
	}
	return loaded{s: s, input: input}, nil
}

// deref is the reply r points to, or none.
func deref(r *link.Reply) link.Reply {
	if r == nil {
		return link.Reply{}
	}
	return *r
}

// remember records on the session what recognises this hop when it comes
// again (its reply, the transcript's mark, the hop number) and when the
// session expires, is purged and its secrets lapse.
func (e *Engine) remember(s *Session, hop link.Hop, reply link.Reply, now time.Time) {
	s.Reply = reply
	s.Hops++
	s.Updated, s.HopAt = now, now
	s.Expires = now.Add(e.cfg.SessionTTL)
	if hop.TTL > 0 {
		s.Expires = now.Add(hop.TTL)
	}
	s.Purge = e.purgeAt(s)
	e.stampSealed(s)
	if hop.Cumulative {
		s.Mark = e.marker.mark(hop.Transcript)
	} else {
		s.Mark = e.marker.chain(s.Mark, hop.Input)
		s.Seq, s.InputSum = hop.Seq, e.marker.mark(hop.Input).Sum
	}
}

// stampSealed sets when the session's sealed values lapse: the sweeper
// erases them all then, whichever was typed first deciding.
func (e *Engine) stampSealed(s *Session) {
	s.SealedUntil = time.Time{}
	if len(s.Login) > 0 {
		s.SealedUntil = s.LoginAt.Add(e.cfg.SecretTTL)
	}
	if len(s.Answers) > 0 {
		if at := s.AnswersAt.Add(e.cfg.SecretTTL); s.SealedUntil.IsZero() || at.Before(s.SealedUntil) {
			s.SealedUntil = at
		}
	}
}

// reserve takes one of the phone's guesses at a secret before the bank is
// asked. ok is false when the phone is locked out. A store failure does not
// lock anyone out: the guess goes ahead unreserved.
func (e *Engine) reserve(ctx context.Context, phone string, now time.Time) (key string, ok bool) {
	key, ok, err := e.store.ReserveAttempt(ctx, phone, now.Add(-e.cfg.Lockout), now, e.cfg.MaxLoginFailures)
	if err != nil {
		e.log.Error().Err(err).Msg("reserve a login attempt")
		return "", true
	}
	return key, ok
}

// locked reports whether a phone's logins are paused: too many refused
// logins within the lockout. A store failure does not lock anyone out.
func (e *Engine) locked(ctx context.Context, phone string, now time.Time) bool {
	n, err := e.store.LoginFailures(ctx, phone, now.Add(-e.cfg.Lockout))
	if err != nil {
		e.log.Error().Err(err).Msg("count login failures")
		return false
	}
	return n >= e.cfg.MaxLoginFailures
}

// waitBudget is how long a hop may wait for Mono: the hop budget less a
// margin for committing and writing the reply.
func (e *Engine) waitBudget() time.Duration {
	return e.cfg.HopBudget - min(e.cfg.HopBudget/5, 500*time.Millisecond)
}

// purgeAt is when the sweeper may delete a session: once it has expired, or
// for one that might be resumed, once the resume window has passed too.
func (e *Engine) purgeAt(s *Session) time.Time {
	if s.Done() && !s.Unseen {
		return s.Expires
	}
	return s.Expires.Add(e.cfg.ResumeWindow)
}

// reportUnauthorized logs a refused Mono key loudly the first time, and
// quietly after that until Mono accepts the key again.
func (e *Engine) reportUnauthorized(err error) {
	if e.unauthorized.CompareAndSwap(false, true) {
		e.log.Error().Err(err).Msg("Mono refused the secret key: check [mono] secret-key and that the Partners add-on is enabled; users see 'service unavailable'")
		return
	}
	e.log.Debug().Err(err).Msg("Mono still refuses the secret key")
}

// Close records that the aggregator ended a session (the user hung up, the
// network timed out). The session takes no more hops; a link under way can
// still be resumed by dialling again. detail is the aggregator's own
// explanation, if any; what the user typed is never passed here.
func (e *Engine) Close(ctx context.Context, hop link.Hop, detail string) error {
	if err := checkSessionID(hop.SessionID); err != nil {
		return err
	}
	ctx, unlock, err := e.lockSession(ctx, hop.SessionID)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := e.session(ctx, hop.SessionID)
	switch {
	case errors.Is(err, link.ErrNoSession):
		return nil
	case err != nil:
		return fmt.Errorf("load session: %w", err)
	case s.Phone != hop.Phone:
		return &link.HopError{Reason: "phone number differs from the session's"}
	case s.Closed != "":
		return nil
	}
	s.Closed = gsm.Cut(gsm.Transliterate(hop.Closing), 32)
	s.ClosedError = gsm.Cut(gsm.Transliterate(detail), 200)
	s.Updated = e.now()
	if !s.Done() {
		s.Purge = e.purgeAt(s)
	}
	if err := e.commit(ctx, link.Change{}, s, nil); err != nil {
		return fmt.Errorf("commit closed session: %w", err)
	}
	e.log.Info().Str("session", s.ID).Str("phone", e.cfg.LogPhone(s.Phone)).Str("state", s.State).
		Str("status", s.Closed).Str("detail", s.ClosedError).Msg("aggregator closed the session")
	return nil
}

// Cancel ends a session as the user's exit (a text conversation's CANCEL or
// STOP): it is not offered for resuming, and the partner hears EXIT.
func (e *Engine) Cancel(ctx context.Context, sessionID, phone string) error {
	ctx, unlock, err := e.lockSession(ctx, sessionID)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := e.session(ctx, sessionID)
	switch {
	case errors.Is(err, link.ErrNoSession):
		return nil
	case err != nil:
		return fmt.Errorf("load session: %w", err)
	case s.Phone != phone || s.Done():
		return nil
	}
	t := e.newTurn(ctx, s, e.now(), time.Now(), ctx)
	t.end(ReasonExit)
	s.Updated = t.now
	s.Purge = e.purgeAt(s)
	if err := e.commit(ctx, t.change(), t.s, t.retired); err != nil {
		return fmt.Errorf("commit cancelled session: %w", err)
	}
	t.notify()
	return nil
}

// lockSession takes a session's lock: this process's first, so that local
// hops queue without holding a database connection, then the instances'
// when they share a store. unlock lets both go. The session is read and
// committed with the context returned (see SessionLocker).
func (e *Engine) lockSession(ctx context.Context, id string) (context.Context, func(), error) {
	local, err := e.locks.LockContext(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("lock session: %w", err)
	}
	var shared func()
	switch l := e.cfg.Locker.(type) {
	case nil:
		return ctx, local, nil
	case SessionLocker:
		ctx, shared, err = l.LockSession(ctx, id)
	default:
		shared, err = l.LockContext(ctx, "session:"+id)
	}
	if err != nil {
		local()
		return nil, nil, fmt.Errorf("lock session: %w", err)
	}
	return ctx, func() { shared(); local() }, nil
}

// workElsewhere reports whether the loaded session waits on Mono work that
// another instance runs (and the user asked to check, not to leave).
func (e *Engine) workElsewhere(ctx context.Context, l loaded) bool {
	p := l.s.Pending
	return p != nil && l.s.State == StateWaiting && l.input != screen.InputBack && e.heldElsewhere(ctx, p.Job)
}

// awaitSettled waits, until deadline, for the session to change from s in
// the store — the instance running its work committed the outcome —
// looking every pollSettled.
func (e *Engine) awaitSettled(ctx context.Context, s *Session, deadline time.Time) {
	tick := time.NewTicker(pollSettled)
	defer tick.Stop()
	for time.Until(deadline) > pollSettled {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, err := e.store.Session(ctx, s.ID)
		if err != nil {
			return
		}
		clear(r.Secrets) // only its time is looked at
		// The session's own time, not the record's: a store may keep
		// times to the microsecond only.
		var now Session
		if decodeData(r.Data, &now) != nil || !now.Updated.Equal(s.Updated) {
			return
		}
	}
}

// pollSettled is how often a hop waiting on another instance's work looks
// at the store: a few times within any hop budget.
const pollSettled = 50 * time.Millisecond
