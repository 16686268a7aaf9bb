package link

import (
	"errors"
	"strings"
	"time"
)

// Kinds of invitation a partner can send a customer.
const (
	InviteLink   = "link"   // link an account (optionally at one institution)
	InviteReauth = "reauth" // re-authorise an account already linked
)

// Statuses of an invitation, as the partner API reports them.
const (
	StatusPending      = "pending"
	StatusLinked       = "linked"
	StatusReauthorised = "reauthorised"
	StatusFailed       = "failed"
	StatusExpired      = "expired"
	StatusUnlinked     = "unlinked" // the link made under it was unlinked at Mono since
)

// Invite is a partner's request that a customer link (or re-authorise) an
// account: a code to dial, the customer's phone, the partner's reference,
// and, once done, the outcome.
type Invite struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Code        string    `json:"code"` // dialled after the short code: *384*123*<code>#
	Phone       string    `json:"phone"`
	Reference   string    `json:"reference,omitempty"`
	Institution string    `json:"institution,omitempty"`
	AuthMethod  string    `json:"auth_method,omitempty"`
	AccountID   string    `json:"account_id,omitempty"` // reauth: the account; link: once linked
	Status      string    `json:"status"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
	Updated     time.Time `json:"updated"`
	Session     string    `json:"session,omitempty"` // the session that claimed it, then the one that used it
	// Claimed is when Session claimed it: a claim by a session not yet
	// stored holds ClaimGrace from then.
	Claimed time.Time `json:"claimed,omitempty"`
	Link    *Link     `json:"link,omitempty"`
	// Customer is whom the partner says the account is for: Mono's v2
	// sessions name a customer. Nil: the gateway's templates decide.
	Customer *Customer `json:"customer,omitempty"`
	// Language is the language the partner says the customer reads (a
	// lang code): the session speaks it and the phone keeps it.
	Language string `json:"language,omitempty"`
}

// Customer is the person an invitation is for, as Mono's v2 sessions name
// one. Either field may be empty: the gateway's templates fill it.
type Customer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// StatusAt is the invite's status as seen at now: a pending invite past its
// expiry is expired.
func (i *Invite) StatusAt(now time.Time) string {
	if i.Status == StatusPending && !now.Before(i.Expires) {
		return StatusExpired
	}
	return i.Status
}

// Usable reports whether the invite can be used by phone at now.
func (i *Invite) Usable(phone string, now time.Time) bool {
	return i.StatusAt(now) == StatusPending && PhoneKey(i.Phone) == PhoneKey(phone)
}

// PhoneKey is a phone number as compared and indexed: without its "+", so
// that "+2348030000001" from one aggregator and "2348030000001" from
// another are the same phone.
func PhoneKey(p string) string {
	return strings.TrimPrefix(strings.TrimSpace(p), "+")
}

// ErrInviteInUse is returned by a claim when another live
// session of the phone holds the invitation: this one continues without it.
var ErrInviteInUse = errors.New("invite in use by another session")

// InviteClaim asks for an invitation for one session: the one holding Code,
// the one with ID, or (with neither) the phone's most recent usable one that
// no live session holds. The invitation must be usable by Phone at Now
// (and be of Kind, when set).
type InviteClaim struct {
	ID      string
	Code    string
	Phone   string
	Session string // the claiming session
	Kind    string // only an invitation of this kind, when set
	// From is a session this one takes over (resumes or replaces): its claim
	// passes on.
	From string
	Now  time.Time
	// Holds reports whether holder, the stored record of the session that
	// claimed inv (nil when that session is not stored), still holds it at
	// Now. The conversation decides; the store only asks.
	Holds func(inv *Invite, holder *SessionRecord) bool
}

// HandoverPrefix starts the id of an invitation an SMS conversation made to
// hand its user over to USSD: useless once expired, so it is not kept.
const HandoverPrefix = "hnd_"

// Handover reports whether the invitation is an SMS hand-over's.
func (i *Invite) Handover() bool { return strings.HasPrefix(i.ID, HandoverPrefix) }

// ErrNoInvite is returned for an unknown or unusable invitation.
var ErrNoInvite = errors.New("no such invite")
