package link

import "time"

// Conversation is a phone's current text-message conversation: the
// session it drives and how many messages it has taken.
type Conversation struct {
	Session string    `json:"session"`
	Seq     int       `json:"seq"`
	Expires time.Time `json:"expires"`
}
