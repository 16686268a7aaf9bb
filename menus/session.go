package menus

import (
	"time"

	"github.com/ussdlink/ussdlink/mono"
)

// Session is one phone's conversation, stored between hops. Answers holds
// what the user typed into the current form; it is never serialised as it
// is (the store seals it) and is erased once Mono has used it.
type Session struct {
	ID          string    `json:"id"`
	Phone       string    `json:"phone"`
	ServiceCode string    `json:"service_code"`
	Network     string    `json:"network,omitempty"`
	State       string    `json:"state"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	Expires     time.Time `json:"expires"`
	Hops        int       `json:"hops"`

	// Mark is where the transcript stood after the last hop, and Reply what
	// that hop answered: together they recognise a repeated callback.
	Mark  Mark  `json:"mark"`
	Reply Reply `json:"reply"`

	Notice string `json:"notice,omitempty"` // shown once above the next screen
	List   List   `json:"list"`             // paging of the current menu
	Filter string `json:"filter,omitempty"` // typed letters narrowing the bank list

	Bank        *Bank             `json:"bank,omitempty"`
	Method      string            `json:"method,omitempty"`
	Form        Form              `json:"form"`
	FormKind    string            `json:"form_kind,omitempty"` // formLogin or formChallenge
	Field       int               `json:"field"`
	Answers     map[string]string `json:"-"`
	MonoSession string            `json:"mono_session,omitempty"`
	MonoExpires time.Time         `json:"mono_expires,omitempty"`
	Accounts    []mono.Account    `json:"accounts,omitempty"`
	Chosen      *mono.Account     `json:"chosen,omitempty"`
	Failures    int               `json:"failures,omitempty"`

	AnswersAt time.Time `json:"answers_at,omitempty"` // when the last answer was typed
	// Login holds the login form's answers, sealed like Answers, from the
	// login until the link is made or the session ends, and never longer
	// than the secret lifetime after LoginAt: when Mono's answer to a later
	// step is lost, a fresh Mono session is logged in with them, so the
	// user is not asked to type them again.
	Login   map[string]string `json:"-"`
	LoginAt time.Time         `json:"login_at,omitempty"`
	// Recoveries counts the fresh logins made after Mono's answers were
	// lost, so that a Mono that never answers ends the session.
	Recoveries int `json:"recoveries,omitempty"`
	// SecretsLost says the store could not open the session's sealed values
	// (the key that sealed them is gone): they are treated as lapsed.
	SecretsLost bool `json:"-"`
	// SealedUntil is when the sealed answers lapse: the sweeper erases them
	// then, even from a session that is kept for longer.
	SealedUntil time.Time `json:"sealed_until,omitempty"`
	Pending     *Pending  `json:"pending,omitempty"`   // Mono work under way
	Unseen      bool      `json:"unseen,omitempty"`    // background work settled; the next hop shows it
	ResumeOf    string    `json:"resume_of,omitempty"` // the dropped session offered for resuming
	Purge       time.Time `json:"purge"`               // when the sweeper may delete the session

	// Seq and InputSum recognise a repeated delivery from a latest-input
	// dialect: the aggregator's hop number, or a keyed hash of the input.
	Seq      int       `json:"seq,omitempty"`
	InputSum []byte    `json:"input_sum,omitempty"`
	HopAt    time.Time `json:"hop_at,omitempty"` // when the last hop arrived (Updated also moves in the background)
	// Closed is the status with which the aggregator ended the session
	// (its user hung up, the network timed out); no hop is taken after it,
	// but a link under way can still be resumed by dialling again.
	Closed      string `json:"closed,omitempty"`
	ClosedError string `json:"closed_error,omitempty"`

	// Invite is the partner invitation this session follows, if any, and
	// Reference the partner's reference that comes with it.
	Invite     string `json:"invite,omitempty"`
	InviteKind string `json:"invite_kind,omitempty"`
	Reference  string `json:"reference,omitempty"`
	ReauthOf   string `json:"reauth_of,omitempty"` // the account a reauth session re-authorises
	Channel    string `json:"channel,omitempty"`   // "sms" for a text-message conversation
	Handover   string `json:"handover,omitempty"`  // the code an SMS conversation handed over to USSD with

	Reason string `json:"reason,omitempty"` // why the session ended
	Link   *Link  `json:"link,omitempty"`
}

// Bank is the institution a session is linking, with its login methods.
type Bank struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Methods []mono.AuthMethod `json:"methods"`
}

// List is the paging position of the menu on screen: the first option's
// index, the offsets of earlier pages (for 0 Back) and how many options the
// user was shown.
type List struct {
	Offset int   `json:"offset"`
	Prev   []int `json:"prev,omitempty"`
	Shown  int   `json:"shown"`
}

// Done reports whether the session has ended.
func (s *Session) Done() bool { return s.State == StateLinked || s.State == StateEnded }

// Link is a bank account linked through the gateway: what the partner needs
// to use Mono's account id, and what Mono has said about it since.
type Link struct {
	AccountID   string    `json:"account_id"`
	Phone       string    `json:"phone"`
	Institution string    `json:"institution"`
	Bank        string    `json:"bank"`
	AuthMethod  string    `json:"auth_method"`
	Masked      string    `json:"masked"`
	Currency    string    `json:"currency,omitempty"`
	SessionID   string    `json:"session_id"`
	Reference   string    `json:"reference,omitempty"`
	Linked      time.Time `json:"linked"`

	DataStatus     string    `json:"data_status,omitempty"`     // from Mono's account_updated
	ReauthRequired bool      `json:"reauth_required,omitempty"` // Mono asked for a reauthorisation
	Reauthorised   time.Time `json:"reauthorised,omitempty"`
}

// Reply is what the gateway answers a hop: a screen's text and whether the
// session ends with it. Dialects turn it into their own format.
type Reply struct {
	Text string `json:"text"`
	End  bool   `json:"end"`
}

// Hop is one callback from an aggregator, in no aggregator's format.
// Cumulative dialects (Africa's Talking) set Transcript to the whole input
// history and Cumulative; the engine works out this hop's input from what
// the session remembers. Latest-input dialects set Input.
type Hop struct {
	SessionID   string
	Phone       string
	ServiceCode string
	Network     string
	New         bool   // the aggregator says this is a session's first hop
	Input       string // this hop's input, for latest-input dialects
	Transcript  string // the whole input history, for cumulative dialects
	Cumulative  bool
	// Seq is the aggregator's number for this hop (Hubtel's Sequence), when
	// it sends one: a repeated delivery carries the same number.
	Seq int
	// Dialled is the whole string the user dialled, when the aggregator
	// sends it on a first hop ("*713*22*7#"): it may carry a deep-dial code.
	Dialled string
	// Closing, when set, says the aggregator ended the session, and how
	// ("Incomplete", "Release", "Timeout"): there is nothing to answer.
	Closing string
	Limit   int // screen budget for this hop; 0 means the engine's default
	// Channel is "sms" for a text-message conversation, "" for USSD; TTL,
	// when set, is its session's inactivity limit.
	Channel string
	TTL     time.Duration
	// ReplyByText queues the reply as a text in the hop's own commit, for
	// text conversations whose provider takes replies as messages.
	ReplyByText bool
}

// ChannelSMS marks hops of a text-message conversation.
const ChannelSMS = "sms"

// Event is something the partner hears about, as the Connect widget would
// report it: OPENED, INSTITUTION_SELECTED, ACCOUNT_LINKED, … It goes through
// the outbox, so it is committed with the state that produced it.
type Event struct {
	ID        string         `json:"id"` // the webhook-id: stable across retries
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// Text is a text message to send: what kind (a receipt, an invitation, a
// late outcome, a nudge) and to whom, with the values its template needs.
// The words live with the SMS package's templates, in one place.
type Text struct {
	ID      string            `json:"id"`
	Kind    string            `json:"kind"`
	To      string            `json:"to"`
	Data    map[string]string `json:"data,omitempty"`
	Created time.Time         `json:"created"`
}

// Kinds of text message.
const (
	TextReceipt     = "receipt"      // after a link: bank, masked number, partner
	TextInvitation  = "invitation"   // a partner's invitation: the code to dial
	TextLateOutcome = "late_outcome" // a background login finished after the session ended
	TextReauthNudge = "reauth_nudge" // Mono asks for a reauthorisation
	TextReply       = "reply"        // one screen of an SMS conversation
)

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
	Session      *Session
	Link         *Link    // set when this hop linked an account
	Retired      *Session // set when this hop ended another session by resuming it
	// LoginFailure records a refused bank login or answer against the
	// session's phone, for the lockout.
	LoginFailure bool
	// Release lists attempts reserved with Store.ReserveAttempt whose
	// outcome was not a refusal: they no longer count against the phone.
	Release []string
}
