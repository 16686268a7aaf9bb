package menus

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/looplab/fsm"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
)

// turn is one hop's work on one session.
type turn struct {
	ctx      context.Context
	e        *Engine
	s        *Session
	now      time.Time
	deadline time.Time       // Mono work not done by then continues in the background
	bounded  context.Context // t.ctx bounded by the deadline, for waits on Mono
	log      zerolog.Logger

	link     *link.Link // set when this turn linked an account
	retired  *Session   // a session this turn ended by resuming or restarting it
	held     func()     // unlocks the retired session, once the turn is committed
	refused  bool       // the bank refused a login or answer no reservation stood for
	released []string   // reserved attempts whose outcome was not a refusal

	afterCommit  []func()     // run once the turn's change is durable
	code         string       // the deep-dial code of a new session, if any
	events       []link.Event // for the partner, committed with the turn
	invite       *link.Invite // the session's invitation, once loaded or changed
	inviteEvents []link.Event // sent only if the invitation's change is committed
	texts        []link.Text  // text messages, committed with the turn
	// inviteChanged marks an invitation updated while still pending.
	inviteChanged bool
	// endedOn is the screen the turn's session ended on, when it ended in
	// this turn; linkedAt the institution of an account it linked (or
	// reauthorised, when reauthed is set).
	endedOn  string
	linkedAt string
	// langChosen is a language chosen in this turn (by the user, a
	// shortcut or an invitation): remembered for the phone with the turn.
	langChosen string
	reauthed   bool
	// look is what the first screen read of the phone in one go
	// (FirstLooker), nil when the store cannot or the read failed: each
	// check then reads for itself.
	look *link.FirstLook
}

// newTurn starts a turn on s at now (the engine's clock). Mono work not
// done by deadline (the wall clock's) continues in the background; bounded
// is ctx bounded by it, for waits on Mono. A turn outside a hop (a settle,
// a cancel) passes the present and ctx: it waits for nothing.
func (e *Engine) newTurn(ctx context.Context, s *Session, now, deadline time.Time, bounded context.Context) *turn {
	return &turn{ctx: ctx, e: e, s: s, now: now, deadline: deadline, bounded: bounded,
		log: e.log.With().Str("session", s.ID).Logger()}
}

// take is the journey's answer to a hop: the first screen of a new (or
// restarted) session, the end of an expired one, or what the input does;
// then the screen, fitted to the hop's budget.
func (t *turn) take(hop link.Hop, input string, restarted bool) link.Reply {
	s := t.s
	switch {
	case restarted:
		t.start()
		if s.Notice == "" {
			s.Notice = textStartedAgain
		}
	case s.Hops == 0:
		t.code = t.e.extension(hop)
		t.start()
	case !s.Done() && !t.now.Before(s.Expires):
		t.end(ReasonExpired)
	default:
		t.advance(input)
	}
	t.handover()
	limit := hop.Limit
	if limit <= 0 {
		limit = t.e.cfg.ScreenLimit
	}
	reply := t.render(limit)
	if hop.ReplyByText {
		t.texts = append(t.texts, link.Text{ID: "sms_" + link.NewEventID()[4:], Kind: link.TextReply, To: s.Phone,
			Data: map[string]string{"text": reply.Text}, Created: t.now})
	}
	return reply
}

// committed runs what waited for the turn's change to be durable and wakes
// the workers that send what it queued.
func (t *turn) committed() {
	for _, f := range t.afterCommit {
		f()
	}
	t.notify()
	if t.endedOn != "" {
		t.log.Info().Str("phone", t.e.cfg.LogPhone(t.s.Phone)).Str("reason", t.s.Reason).Str("screen", t.endedOn).Int("hops", t.s.Hops).Msg("session ended")
	}
	t.observe()
}

// observe tells the engine's observer what the committed turn did.
func (t *turn) observe() {
	o := t.e.cfg.Observer
	if o == nil {
		return
	}
	if t.linkedAt != "" {
		kind := "link"
		if t.reauthed {
			kind = "reauth"
		}
		o.Linked(t.linkedAt, kind)
	}
	if t.endedOn != "" {
		o.SessionEnded(t.s.Reason, t.endedOn)
		if t.s.Reason == ReasonLocked {
			o.Refused("lockout")
		}
	}
}

// change is what the turn commits, beside its sessions (Engine.commit).
func (t *turn) change() link.Change {
	c := link.Change{Link: t.link, LoginFailure: t.refused, Release: t.released, Events: t.events, Texts: t.texts, Language: t.langChosen}
	if t.invite != nil && (t.invite.Status != link.StatusPending || t.inviteChanged) {
		c.Invite, c.InviteEvents = t.invite, t.inviteEvents
	}
	return c
}

// release lets go of a second session's lock, once the turn is committed.
func (t *turn) release() {
	if t.held != nil {
		t.held()
		t.held = nil
	}
}

// fire sends an event to the session's machine.
func (t *turn) fire(event string, a args) { t.fireOn(t.s, event, a) }

// fireOn sends an event to the machine of s, the turn's session or one it
// retires. An event the state does not accept is a bug in the engine: it
// is logged, and the turn's own session ends.
func (t *turn) fireOn(s *Session, event string, a args) {
	m := t.e.machine(s.State)
	err := m.Event(t.ctx, event, &move{t: t, s: s, args: a})
	t.e.machines.Put(m)
	var none fsm.NoTransitionError
	if err != nil && !errors.As(err, &none) {
		t.log.Error().Err(err).Str("state", s.State).Str("event", event).Msg("invalid transition")
		if s == t.s && event != EventEnd {
			t.fire(EventEnd, args{reason: ReasonFailed})
		}
	}
}

// end finishes the conversation for a reason, telling the partner how.
func (t *turn) end(reason string) {
	page := pageNames[t.s.State]
	t.fire(EventEnd, args{reason: reason})
	switch reason {
	case ReasonExit:
		t.emit(link.TypeExit, map[string]any{"pageName": page})
	case ReasonExpired:
		t.emit(link.TypeExit, map[string]any{"pageName": page, "reason": "TIMEOUT"})
	default:
		if et, ok := errorTypes[reason]; ok {
			t.emit(link.TypeError, map[string]any{"errorType": et, "errorMessage": endTexts[reason]})
		}
		if reason == ReasonTooManyTries {
			// Only the bank refusing the customer fails an invitation; an
			// outage or a lockout passes, and the code can be dialled again.
			t.settleInvite(link.StatusFailed, nil)
		}
	}
}

// start shows the first screen: the banks, or the offer to continue a link
// a dropped session left unfinished.
func (t *turn) start() {
	t.lookFirst()
	defer t.forgetLook()
	if t.lockedOut() {
		t.end(ReasonLocked)
		return
	}
	if _, err := t.e.banks.Get(t.bounded); err != nil {
		if mono.KindOf(err) == mono.KindUnauthorized {
			t.e.reportUnauthorized(err)
			t.end(ReasonUnavailable)
			return
		}
		t.log.Warn().Err(err).Msg("institutions unavailable")
		t.end(ReasonNoBanks)
		return
	}
	ask := t.knowLanguage()
	decided := t.attachInvite()
	t.emit(link.TypeOpened, nil)
	if decided || t.shortcut() {
		return
	}
	defer func() {
		if ask && t.s.State == StateBanks && t.langChosen == "" {
			t.fire(EventAskLanguage, args{})
		}
	}()
	if t.s.Channel == link.ChannelSMS && !t.e.cfg.SMSCredentials {
		return // continuing a link may mean typing a secret: that is for USSD
	}
	prev, err := t.previous()
	if err == nil && prev.ID != t.s.ID && t.e.resumable(prev, t.now) {
		t.fire(EventOfferResume, args{prev: prev})
	} else if err != nil && !errors.Is(err, link.ErrNoSession) {
		t.log.Warn().Err(err).Msg("latest session unavailable")
	}
}

// lookFirst reads, when the store can, what the first screen asks of the
// phone in one go: its lockout, language, invitation and latest session.
func (t *turn) lookFirst() {
	fl, ok := t.e.store.(FirstLooker)
	if !ok {
		return
	}
	look, err := fl.FirstLook(t.ctx, t.s.Phone, t.now.Add(-t.e.cfg.Lockout), t.now)
	if err != nil {
		t.log.Warn().Err(err).Msg("first look at the phone unavailable: each check reads for itself")
		return
	}
	t.look = &look
}

// forgetLook erases the secrets of the latest session the first look
// opened, when the first screen did not need it (a lockout, an
// invitation, a shortcut, a text conversation).
func (t *turn) forgetLook() {
	if t.look != nil && t.look.Latest != nil {
		clear(t.look.Latest.Secrets)
		t.look.Latest = nil
	}
}

// lockedOut reports whether the phone's logins are paused (Engine.locked),
// from the first look when there is one.
func (t *turn) lockedOut() bool {
	if t.look != nil {
		return t.look.Failures >= t.e.cfg.MaxLoginFailures
	}
	return t.e.locked(t.ctx, t.s.Phone, t.now)
}

// previous is the phone's latest session (Engine.latest), from the first
// look when there is one; link.ErrNoSession when it has none.
func (t *turn) previous() (*Session, error) {
	if t.look == nil {
		return t.e.latest(t.ctx, t.s.Phone)
	}
	r := t.look.Latest
	t.look.Latest = nil // decoded once: its opened secrets are erased then
	if r == nil {
		return nil, link.ErrNoSession
	}
	return t.e.decode(r)
}

// shortcut opens the institution a deep-dial code names, if it names one.
func (t *turn) shortcut() bool {
	sc, ok := t.e.cfg.Shortcuts[t.code]
	if ok && sc.Language != "" {
		t.useLanguage(sc.Language)
	}
	return ok && sc.Institution != "" && t.openInstitution(sc.Institution, sc.AuthMethod)
}

// advance applies one input to the screen the user was shown.
func (t *turn) advance(input string) {
	if t.s.Unseen {
		// The outcome of a background step has not been shown yet: this hop
		// shows it, whatever was typed on the waiting screen.
		t.s.Unseen = false
		return
	}
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
	case StateWaiting:
		t.onWaiting(input)
	case StateResume:
		t.onResume(input)
	case StateLanguage:
		t.onLanguage(input)
	}
}

// forget erases everything typed into the current form.
func (t *turn) forget() {
	clear(t.s.Answers)
	t.s.Answers = nil
	t.s.AnswersAt = time.Time{}
	t.s.SealedUntil = time.Time{}
}

// keepLogin holds the login form's answers, sealed, for a fresh login
// should Mono's answer to a later step be lost.
func (t *turn) keepLogin() {
	t.forgetLogin()
	t.s.Login = maps.Clone(t.s.Answers)
	t.s.LoginAt = t.now
}

// forgetLogin erases the kept login answers.
func (t *turn) forgetLogin() {
	clear(t.s.Login)
	t.s.Login = nil
	t.s.LoginAt = time.Time{}
}

// loginFresh reports whether the kept login answers are within their
// lifetime.
func (t *turn) loginFresh() bool {
	return len(t.s.Login) > 0 && t.now.Sub(t.s.LoginAt) < t.e.cfg.SecretTTL
}

// askForm starts collecting a form from its first field. A new login form
// also drops the login answers kept from before.
func (t *turn) askForm(kind string, f Form) {
	t.s.FormKind = kind
	t.s.Form = f
	t.s.Field = 0
	t.forget()
	if kind == formLogin {
		t.forgetLogin()
	}
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
