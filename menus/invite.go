package menus

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

// ErrInviteInUse is returned by Store.ClaimInvite when another live
// session of the phone holds the invitation: this one continues without it.
var ErrInviteInUse = errors.New("invite in use by another session")

// ClaimGrace is how long a claim holds past its session's expiry, and how
// long it holds for a session not yet written: longer than any hop takes to
// commit, so a hop that began before the expiry cannot lose its claim while
// it runs.
const ClaimGrace = time.Minute

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
}

// HoldsInvite reports whether s, the session that claimed inv, still
// holds it at now. A claim holds while its session follows the invitation
// and is live (not ended, not closed by the aggregator, not expired), or
// while Mono work it started may still link an account. It lapses when the
// session ends without using the invitation, so the code can be dialled
// again. A session stored before it claimed (the claiming hop is not
// committed yet) holds it for ClaimGrace; so does a session not stored at
// all (s nil).
func (s *Session) HoldsInvite(inv *Invite, now time.Time) bool {
	if s == nil || s.Updated.Before(inv.Claimed) {
		return now.Before(inv.Claimed.Add(ClaimGrace))
	}
	if s.Invite != inv.ID {
		return false // it took over another conversation, or never got this far
	}
	if s.Pending != nil && now.Before(s.Purge) {
		return true
	}
	return !s.Done() && s.Closed == "" && now.Before(s.Expires.Add(ClaimGrace))
}
