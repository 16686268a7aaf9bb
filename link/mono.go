package link

import "time"

// MonoUpdate is the latest account_updated Mono sent about one account:
// its data status, Mono's own time for it when it sent one, and when it
// arrived.
type MonoUpdate struct {
	AccountID  string    `json:"account_id"`
	DataStatus string    `json:"data_status"`
	EventAt    time.Time `json:"event_at,omitempty"`
	Received   time.Time `json:"received"`
}

// MonoOutcome is what applying one of Mono's webhooks decided: events for
// the partner and, optionally, a text nudging the customer to
// re-authorise, with the invitation it carries. The handler decides all of
// it; the store writes it in the webhook's transaction.
type MonoOutcome struct {
	Events []Event
	// Nudge is the reauthorisation invitation the text carries: the
	// account's stored one (kept as it is), or a new one, which is stored
	// with a fresh code of CodeDigits digits.
	Nudge      *Invite
	CodeDigits int
	// NudgeText builds the nudge once the invitation has its code.
	NudgeText func(*Invite) Text
	// Update, when set, is remembered as the account's latest
	// account_updated, for a link that commits later to take.
	Update *MonoUpdate
}
