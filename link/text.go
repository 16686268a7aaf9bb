package link

import "time"

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

// ChannelSMS marks hops of a text-message conversation.
const ChannelSMS = "sms"
