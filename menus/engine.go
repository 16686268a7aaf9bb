// Package menus is the conversation: the state machine behind the USSD
// screens, one per phone session, rendering each screen within the handset's
// budget, flattening Mono's forms into one prompt per field, and driving the
// login through the Mono interface it declares. It knows nothing of HTTP,
// aggregator formats or bbolt.
package menus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/looplab/fsm"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/mono"
)

// Store keeps sessions and links. Commit must make the change durable before
// it returns: the reply is sent only after.
type Store interface {
	// Session returns the stored session, or ErrNoSession.
	Session(ctx context.Context, id string) (*Session, error)
	// Commit writes everything one hop decided, atomically.
	Commit(ctx context.Context, c Change) error
}

// ErrNoSession is returned by Store.Session for an unknown id.
var ErrNoSession = errors.New("no such session")

// Mono is the part of Mono's Partners API a conversation drives.
type Mono interface {
	Institutions(ctx context.Context) ([]mono.Institution, error)
	CreateSession(ctx context.Context, req mono.SessionRequest) (*mono.Session, error)
	Login(ctx context.Context, sessionID string, fields map[string]string) (*mono.Step, error)
	Commit(ctx context.Context, sessionID string, body map[string]any) (*mono.Step, error)
	Exchange(ctx context.Context, code string) (string, error)
	Account(ctx context.Context, id string) (*mono.AccountDetails, error)
}

// HopError says a callback cannot be processed as sent (a 4xx for the
// aggregator). Its message is safe to log: it never holds what was typed.
type HopError struct{ Reason string }

// Error implements error.
func (e *HopError) Error() string { return "bad hop: " + e.Reason }

// Config tunes an Engine.
type Config struct {
	ScreenLimit   int           // characters after CON/END; default 160
	SessionTTL    time.Duration // inactivity before a session expires; default 180s
	MaxTries      int           // refused logins or answers before giving up; default 3
	BankTTL       time.Duration // how long the institution list is cached; default 1h
	TranscriptKey []byte        // keys the transcript hash; must be secret
}

// Engine runs conversations. It is safe for concurrent use: hops of one
// session are serialised, hops of different sessions run in parallel.
type Engine struct {
	cfg    Config
	store  Store
	mono   Mono
	now    func() time.Time
	log    zerolog.Logger
	marker marker
	banks  catalog
	locks  [256]sync.Mutex
}

// NewEngine returns an Engine over its dependencies. now is the clock.
func NewEngine(cfg Config, store Store, m Mono, now func() time.Time, log zerolog.Logger) *Engine {
	if cfg.ScreenLimit <= 0 {
		cfg.ScreenLimit = 160
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 180 * time.Second
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 3
	}
	if cfg.BankTTL <= 0 {
		cfg.BankTTL = time.Hour
	}
	return &Engine{
		cfg:    cfg,
		store:  store,
		mono:   m,
		now:    now,
		log:    log,
		marker: marker{key: cfg.TranscriptKey},
		banks:  catalog{ttl: cfg.BankTTL},
	}
}

// Handle answers one hop: it loads the session under its lock, recognises a
// repeated callback, advances the machine, and commits the new state before
// returning the reply.
func (e *Engine) Handle(ctx context.Context, hop Hop) (Reply, error) {
	if err := hop.validate(); err != nil {
		return Reply{}, err
	}
	mu := e.lock(hop.SessionID)
	mu.Lock()
	defer mu.Unlock()

	now := e.now()
	s, err := e.store.Session(ctx, hop.SessionID)
	var input string
	switch {
	case errors.Is(err, ErrNoSession):
		s = e.open(hop, now)
	case err != nil:
		return Reply{}, fmt.Errorf("load session: %w", err)
	default:
		if s.Phone != hop.Phone {
			return Reply{}, &HopError{Reason: "phone number differs from the session's"}
		}
		var repeat bool
		input, repeat, err = e.input(s, hop)
		if err != nil {
			return Reply{}, &HopError{Reason: err.Error()}
		}
		if repeat {
			return s.Reply, nil
		}
		if s.Done() {
			return Reply{Text: textSessionOver, End: true}, nil
		}
	}

	t := &turn{ctx: ctx, e: e, s: s, now: now, log: e.log.With().Str("session", s.ID).Logger()}
	limit := hop.Limit
	if limit <= 0 {
		limit = e.cfg.ScreenLimit
	}
	switch {
	case s.Hops == 0:
		t.start()
	case !now.Before(s.Expires):
		t.end(ReasonExpired)
	default:
		t.advance(input)
	}
	reply := t.render(limit)

	s.Reply = reply
	s.Hops++
	s.Updated = now
	s.Expires = now.Add(e.cfg.SessionTTL)
	if hop.Cumulative {
		s.Mark = e.marker.mark(hop.Transcript)
	} else {
		s.Mark = e.marker.chain(s.Mark, hop.Input)
	}
	if err := e.store.Commit(ctx, Change{Session: s, Link: t.link}); err != nil {
		return Reply{}, fmt.Errorf("commit session: %w", err)
	}
	if s.Done() {
		t.log.Info().Str("reason", s.Reason).Int("hops", s.Hops).Msg("session ended")
	}
	return reply, nil
}

// open starts a new session for a first hop.
func (e *Engine) open(hop Hop, now time.Time) *Session {
	return &Session{
		ID:          hop.SessionID,
		Phone:       hop.Phone,
		ServiceCode: hop.ServiceCode,
		Network:     hop.Network,
		State:       StateBanks,
		Created:     now,
		Expires:     now.Add(e.cfg.SessionTTL),
	}
}

// input works out this hop's input: for cumulative dialects, what the
// transcript adds to the remembered one.
func (e *Engine) input(s *Session, hop Hop) (string, bool, error) {
	if hop.Cumulative {
		return e.marker.next(s.Mark, hop.Transcript)
	}
	return hop.Input, false, nil
}

// lock returns the mutex serialising a session's hops.
func (e *Engine) lock(id string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &e.locks[h.Sum32()%uint32(len(e.locks))]
}

// validate refuses hops that cannot belong to any conversation.
func (h Hop) validate() error {
	switch {
	case h.SessionID == "" || len(h.SessionID) > 128:
		return &HopError{Reason: "missing or oversized session id"}
	case h.Phone == "" || len(h.Phone) > 32:
		return &HopError{Reason: "missing or oversized phone number"}
	case len(h.Transcript) > 4096 || len(h.Input) > 1024:
		return &HopError{Reason: "oversized input"}
	case !utf8.ValidString(h.Transcript) || !utf8.ValidString(h.Input):
		return &HopError{Reason: "input is not UTF-8"}
	}
	return nil
}

// turn is one hop's work on one session.
type turn struct {
	ctx  context.Context
	e    *Engine
	s    *Session
	now  time.Time
	log  zerolog.Logger
	link *Link // set when this hop linked an account
}

// fire sends an event to the session's machine. An event the state does not
// accept is a bug in the engine: it is logged and the session ends.
func (t *turn) fire(event string, args ...any) {
	m := newMachine(t.s.State)
	err := m.Event(t.ctx, event, append([]any{t}, args...)...)
	var none fsm.NoTransitionError
	if err != nil && !errors.As(err, &none) {
		t.log.Error().Err(err).Str("state", t.s.State).Str("event", event).Msg("invalid transition")
		if event != EventEnd {
			t.fire(EventEnd, ReasonFailed)
		}
	}
}

// end finishes the conversation for a reason.
func (t *turn) end(reason string) { t.fire(EventEnd, reason) }

// start shows the first screen.
func (t *turn) start() {
	if _, err := t.e.banks.get(t.ctx, t.e.mono, t.now); err != nil {
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
	}
}

// advance applies one input to the screen the user was shown.
func (t *turn) advance(input string) {
	if t.s.State != StateCredentials && t.s.State != StateChallenge {
		input = strings.TrimSpace(input)
	}
	switch t.s.State {
	case StateBanks:
		t.onBanks(input)
	case StateMethods:
		t.onMethods(input)
	case StateCredentials, StateChallenge:
		t.onField(input)
	case StateAccounts:
		t.onAccounts(input)
	}
}

// forget erases everything typed into the current form.
func (t *turn) forget() {
	clear(t.s.Answers)
	t.s.Answers = nil
}

// askForm starts collecting a form from its first field.
func (t *turn) askForm(kind string, f Form) {
	t.s.FormKind = kind
	t.s.Form = f
	t.s.Field = 0
	t.forget()
}

// loginForm is the form of the chosen bank's chosen auth method.
func (t *turn) loginForm() Form {
	if t.s.Bank == nil {
		return Form{}
	}
	for _, m := range t.s.Bank.Methods {
		if m.Type == t.s.Method {
			return Flatten(m.UI)
		}
	}
	return Form{}
}

// pickResult says what an input did on a list screen.
type pickResult int

const (
	picked  pickResult = iota // an option was chosen
	paged                     // 98 or 0 moved between pages
	leaving                   // 0 on the first page
	typed                     // not a number: text for the screen to interpret
	invalid                   // a number that is no option
)

// pick interprets an input on a paged list of total options.
func (t *turn) pick(input string, total int) (int, pickResult) {
	l := &t.s.List
	switch input {
	case InputMore:
		if l.Offset+l.Shown >= total {
			return 0, invalid
		}
		l.Prev = append(l.Prev, l.Offset)
		l.Offset += l.Shown
		return 0, paged
	case InputBack:
		if len(l.Prev) == 0 {
			return 0, leaving
		}
		l.Offset = l.Prev[len(l.Prev)-1]
		l.Prev = l.Prev[:len(l.Prev)-1]
		return 0, paged
	}
	n, err := strconv.Atoi(input)
	switch {
	case err != nil && !isDigits(input):
		return 0, typed
	case err != nil || n < 1 || n > l.Shown || l.Offset+n-1 >= total:
		return 0, invalid
	}
	return l.Offset + n - 1, picked
}

// onBanks handles the bank list: a number, paging, or letters to filter by.
func (t *turn) onBanks(input string) {
	banks, err := t.e.banks.get(t.ctx, t.e.mono, t.now)
	if err != nil {
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
		return
	}
	shown := filterBanks(banks, t.s.Filter)
	i, res := t.pick(input, len(shown))
	switch res {
	case picked:
		t.chooseBank(shown[i])
	case leaving:
		if t.s.Filter != "" {
			t.s.Filter = ""
			t.s.List = List{}
			return
		}
		t.end(ReasonExit)
	case typed:
		if len(filterBanks(banks, input)) == 0 {
			t.s.Notice = textNoMatch(input)
			return
		}
		t.s.Filter = input
		t.s.List = List{}
	case invalid:
		t.s.Notice = textInvalidChoice
	}
}

// chooseBank moves on from the bank list: straight to the form when the bank
// has one auth method, to the choice of method otherwise.
func (t *turn) chooseBank(b *Bank) {
	switch len(b.Methods) {
	case 0:
		t.s.Notice = textBankUnavailable
	case 1:
		t.fire(EventOpenForm, b, b.Methods[0].Type)
	default:
		t.fire(EventChooseBank, b)
	}
}

// onMethods handles the choice between internet and mobile banking.
func (t *turn) onMethods(input string) {
	methods := t.s.Bank.Methods
	i, res := t.pick(input, len(methods))
	switch res {
	case picked:
		t.fire(EventOpenForm, nil, methods[i].Type)
	case leaving:
		t.end(ReasonExit)
	case typed, invalid:
		t.s.Notice = textInvalidChoice
	}
}

// onField takes the value of one form field; the last one sends the form.
// The value is kept exactly as typed: it may contain "*", "#" or spaces.
func (t *turn) onField(input string) {
	if input == InputBack {
		t.end(ReasonExit)
		return
	}
	if t.s.Field >= len(t.s.Form.Fields) {
		t.end(ReasonFailed)
		return
	}
	field := t.s.Form.Fields[t.s.Field]
	if reason := field.Check(input); reason != "" {
		t.s.Notice = reason
		return
	}
	if t.s.Answers == nil {
		t.s.Answers = make(map[string]string, len(t.s.Form.Fields))
	}
	t.s.Answers[field.Name] = input
	t.s.Field++
	if t.s.Field < len(t.s.Form.Fields) {
		return
	}
	if t.s.FormKind == formLogin {
		step, err := t.login()
		t.outcome(step, err)
		return
	}
	body := make(map[string]any, len(t.s.Answers))
	for k, v := range t.s.Answers {
		body[k] = v
	}
	step, err := t.commit(body)
	t.outcome(step, err)
}

// onAccounts handles the choice of account after a 101.
func (t *turn) onAccounts(input string) {
	i, res := t.pick(input, len(t.s.Accounts))
	switch res {
	case picked:
		chosen := t.s.Accounts[i]
		t.s.Chosen = &chosen
		step, err := t.commit(map[string]any{"account": i})
		t.outcome(step, err)
	case leaving:
		t.end(ReasonExit)
	case typed, invalid:
		t.s.Notice = textInvalidChoice
	}
}

// login opens a Mono session when there is none (or it has expired) and
// logs in with the answers exactly as typed.
func (t *turn) login() (*mono.Step, error) {
	if t.s.MonoSession == "" || !t.now.Before(t.s.MonoExpires) {
		ms, err := t.e.mono.CreateSession(t.ctx, mono.SessionRequest{
			Institution: t.s.Bank.ID,
			AuthMethod:  t.s.Method,
		})
		if err != nil {
			return nil, err
		}
		t.s.MonoSession = ms.ID
		t.s.MonoExpires = expiry(ms.ExpiresAt, t.now)
	}
	return t.e.mono.Login(t.ctx, t.s.MonoSession, t.s.Answers)
}

// commit sends the answer to the step Mono is waiting for.
func (t *turn) commit(body map[string]any) (*mono.Step, error) {
	return t.e.mono.Commit(t.ctx, t.s.MonoSession, body)
}

// expiry turns Mono's expiresAt (epoch ms) into a time, keeping a margin so a
// session is not used in its last seconds; without one, ten minutes.
func expiry(ms int64, now time.Time) time.Time {
	if ms <= 0 {
		return now.Add(10 * time.Minute)
	}
	return time.UnixMilli(ms).Add(-15 * time.Second)
}

// outcome moves the conversation on from Mono's answer to a login or commit.
// What was typed has been used by now and is erased whatever the answer.
func (t *turn) outcome(step *mono.Step, err error) {
	t.forget()
	if err != nil {
		t.failed(err)
		return
	}
	switch step.ResponseCode {
	case mono.CodeLinked:
		t.finish(step.Code)
	case mono.CodeSelectAccount:
		if len(step.Accounts) == 0 {
			t.log.Warn().Msg("mono offered no accounts")
			t.end(ReasonFailed)
			return
		}
		t.fire(EventAskAccount, step.Accounts)
	case mono.CodeUserInput:
		var form Form
		if step.Form != nil {
			form = Flatten(*step.Form)
		}
		if len(form.Fields) == 0 {
			t.log.Warn().Msg("mono asked for input with no input fields")
			t.end(ReasonFailed)
			return
		}
		t.fire(EventAskInput, form)
	default:
		t.log.Warn().Int("response_code", step.ResponseCode).Msg("unexpected mono step")
		t.end(ReasonFailed)
	}
}

// failed decides what a failed login or commit means for the user: try
// again, or an END screen that says nothing of Mono's internals.
func (t *turn) failed(err error) {
	kind := mono.KindOf(err)
	ev := t.log.Warn()
	if kind == mono.KindUnauthorized {
		ev = t.log.Error()
	}
	ev.Err(err).Str("state", t.s.State).Msg("mono step failed")
	switch kind {
	case mono.KindRejected:
		t.s.Failures++
		if t.s.Failures >= t.e.cfg.MaxTries {
			t.end(ReasonTooManyTries)
			return
		}
		switch t.s.State {
		case StateChallenge:
			t.fire(EventAskInput, t.s.Form) // ask the same question again
			t.s.Notice = textAnswerRejected
		case StateAccounts:
			t.s.Notice = textAnswerRejected
		default:
			t.fire(EventLoginFailed)
		}
	case mono.KindUnauthorized:
		t.end(ReasonUnavailable)
	default:
		t.end(ReasonFailed)
	}
}

// finish exchanges Mono's code for the account id, reads the account for
// its masked number, and links it.
func (t *turn) finish(code string) {
	accountID, err := t.e.mono.Exchange(t.ctx, code)
	if err != nil {
		t.failed(err)
		return
	}
	link := &Link{
		AccountID:   accountID,
		Phone:       t.s.Phone,
		Institution: t.s.Bank.ID,
		Bank:        t.s.Bank.Name,
		AuthMethod:  t.s.Method,
		SessionID:   t.s.ID,
		Linked:      t.now,
	}
	if t.s.Chosen != nil {
		link.Masked = mono.Mask(t.s.Chosen.AccountNumber)
		link.Currency = t.s.Chosen.Currency
	}
	details, err := t.e.mono.Account(t.ctx, accountID)
	if err != nil {
		// The link exists at Mono; only the details are missing.
		t.log.Warn().Err(err).Msg("account details unavailable")
	} else {
		link.Masked = mono.Mask(details.AccountNumber)
		link.Currency = details.Currency
		if details.AuthMethod != "" {
			link.AuthMethod = details.AuthMethod
		}
	}
	t.fire(EventLink, link)
}
