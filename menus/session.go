package menus

//go:generate go tool msgp -file=session.go -o=session_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import (
	"time"

	"github.com/ussdlink/ussdlink/link"
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
	Mark  Mark       `json:"mark"`
	Reply link.Reply `json:"reply"`

	Notice string `json:"notice,omitempty"` // shown once above the next screen
	List   List   `json:"list"`             // paging of the current menu
	Filter string `json:"filter,omitempty"` // typed letters narrowing the bank list

	Bank        *Bank             `json:"bank,omitempty"`
	Method      string            `json:"method,omitempty"`
	Form        Form              `json:"form"`
	FormKind    string            `json:"form_kind,omitempty"` // formLogin, formChallenge or formRelogin
	Field       int               `json:"field"`
	Answers     map[string]string `json:"-"`
	MonoSession string            `json:"mono_session,omitempty"`
	MonoExpires time.Time         `json:"mono_expires,omitzero"`
	Accounts    []mono.Account    `json:"accounts,omitempty"`
	Chosen      *mono.Account     `json:"chosen,omitempty"`
	Failures    int               `json:"failures,omitempty"`

	AnswersAt time.Time `json:"answers_at,omitzero"` // when the last answer was typed
	// Login holds the login form's answers, sealed like Answers, from the
	// login until the link is made or the session ends, and never longer
	// than the secret lifetime after LoginAt: when Mono's answer to a later
	// step is lost, a fresh Mono session is logged in with them, so the
	// user is not asked to type them again.
	Login   map[string]string `json:"-"`
	LoginAt time.Time         `json:"login_at,omitzero"`
	// Recoveries counts the fresh logins made after Mono's answers were
	// lost, so that a Mono that never answers ends the session.
	Recoveries int `json:"recoveries,omitempty"`
	// SecretsLost says the store could not open the session's sealed values
	// (the key that sealed them is gone): they are treated as lapsed.
	SecretsLost bool `json:"-"`
	// SealedUntil is when the sealed answers lapse: the sweeper erases them
	// then, even from a session that is kept for longer.
	SealedUntil time.Time `json:"sealed_until,omitzero"`
	Pending     *Pending  `json:"pending,omitempty"`   // Mono work under way
	Unseen      bool      `json:"unseen,omitempty"`    // background work settled; the next hop shows it
	ResumeOf    string    `json:"resume_of,omitempty"` // the dropped session offered for resuming
	Purge       time.Time `json:"purge"`               // when the sweeper may delete the session

	// Seq and InputSum recognise a repeated delivery from a latest-input
	// dialect: the aggregator's hop number, or a keyed hash of the input.
	Seq      int       `json:"seq,omitempty"`
	InputSum []byte    `json:"input_sum,omitempty"`
	HopAt    time.Time `json:"hop_at,omitzero"` // when the last hop arrived (Updated also moves in the background)
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
	// CustomerName and CustomerEmail are the customer the invitation named,
	// for Mono's v2 sessions; a plain dial takes them from the templates.
	CustomerName  string `json:"customer_name,omitempty"`
	CustomerEmail string `json:"customer_email,omitempty"`
	Channel       string `json:"channel,omitempty"`  // "sms" for a text-message conversation
	Handover      string `json:"handover,omitempty"` // the code an SMS conversation handed over to USSD with

	Reason string     `json:"reason,omitempty"` // why the session ended
	Link   *link.Link `json:"link,omitempty"`

	// For the drop-off funnel: the aggregator route, the screens shown
	// (in the order first reached, with the seconds spent on each), the
	// screen shown last and since when, and whether the session's entry
	// has been counted (once, when it ended or when it is swept).
	Dialect string `json:"dialect,omitempty"`
	// Lang is the language the session speaks (a lang code). A session
	// stored before sessions spoke languages has none, and speaks the
	// default from the moment it is loaded (Engine.decode).
	Lang    string    `json:"lang,omitempty"`
	Visits  []Visit   `json:"visits,omitempty"`
	Shown   string    `json:"shown,omitempty"`
	ShownAt time.Time `json:"shown_at,omitzero"`
	Counted bool      `json:"counted,omitempty"`
}

// Visit is a screen a session showed and the seconds the user spent on it.
type Visit struct {
	Screen  string `json:"screen"`
	Seconds int    `json:"seconds"`
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
