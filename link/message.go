package link

//go:generate go tool msgp -file=message.go -o=message_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import "time"

// Message is a partner webhook or a text waiting in its queue: its body is
// fixed when it is queued, so every retry sends the same bytes under the
// same id.
type Message struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Body     []byte    `json:"body"` // webhooks: {"type","timestamp","data"}; texts: a Text
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
	LastErr  string    `json:"last_error,omitempty"`
	// Key is the ordering key: messages with one key are sent one at a
	// time, in Seq order. Empty means no order to keep.
	Key string `json:"key,omitempty"`
	// Seq is the message's place in its queue, given when it is queued
	// (ids are random and the timestamps of one commit equal).
	Seq uint64 `json:"seq,omitempty"`
}
