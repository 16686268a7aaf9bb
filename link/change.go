package link

// Change is everything one hop decided, committed in one transaction before
// the reply leaves.
type Change struct {
	Events []Event // for the partner, through the outbox
	Texts  []Text  // for the phone, through the text queue
	// Invite is an invitation this hop moved on from pending, and
	// InviteEvents the events that announce it: both are written only if the
	// invitation is still pending when committed (Mono's webhook may have
	// completed it meanwhile).
	Invite       *Invite
	InviteEvents []Event
	Session      *SessionRecord
	Link         *Link          // set when this hop linked an account
	Retired      *SessionRecord // set when this hop ended another session by resuming it
	// LoginFailure records a refused bank login or answer against the
	// session's phone, for the lockout.
	LoginFailure bool
	// Release lists attempts reserved (ReserveAttempt) whose
	// outcome was not a refusal: they no longer count against the phone.
	Release []string
	// Funnel is the session's entry in the drop-off funnel, when it ended
	// in this change: its counters are added in the same transaction.
	Funnel *FunnelEntry
	// RetiredFunnel is the entry of the session Retired ends (a user who
	// started over leaves it where they dropped), counted the same way.
	RetiredFunnel *FunnelEntry
	// Language, when set, is the language the session's phone chose (a
	// code such as "ha"): remembered for the phone's later sessions, in the
	// same transaction as the session.
	Language string
}

// FunnelOf decides the funnel entry of a session the sweeper deletes that
// was never counted (it was abandoned, or the aggregator closed it): nil
// when it was counted already or is not to be. The conversation decides;
// the store asks, in the sweep's transaction.
type FunnelOf func(rec *SessionRecord) *FunnelEntry
