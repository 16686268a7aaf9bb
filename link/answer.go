package link

import "time"

// Answer is a stored API answer, replayed for a repeated Idempotency-Key.
type Answer struct {
	Status  int       `json:"status"`
	Body    []byte    `json:"body"`
	Created time.Time `json:"created"`
	// RequestHash is the SHA-256 of the request body that was answered: the
	// same key with another body is a mistake, not a retry.
	RequestHash []byte `json:"request_hash,omitempty"`
}
