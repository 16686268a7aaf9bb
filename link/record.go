package link

import (
	"errors"
	"time"
)

// SessionRecord is one conversation as the store keeps it. The store does
// not read the conversation: Data is its state, encoded by the conversation;
// the other fields are all the store needs to index, seal and sweep it.
type SessionRecord struct {
	ID    string
	Phone string // E.164; the phone's latest record is found by it (PhoneKey)
	// Updated is when the conversation last changed: a LoginFailure of its
	// change is recorded at this time.
	Updated time.Time
	// Purge is when the sweeper may delete the record.
	Purge time.Time
	// Lapse is when Secrets lapse: the sweeper erases them then, even from
	// a record kept longer. Zero with no secrets.
	Lapse time.Time
	// Data is the conversation's state, opaque to the store.
	Data []byte
	// Secrets are values the store keeps only sealed (what the user typed):
	// plain when written and when read back, never stored as they are. Nil
	// when there are none, when they lapsed, or when SecretsLost.
	Secrets []byte
	// SecretsLost says, on a record read back, that its sealed values could
	// not be opened (the key that sealed them is gone): they are treated as
	// lapsed.
	SecretsLost bool
	// SecretsLapsed says, on a record read back, that the sweeper erased
	// its sealed values when they lapsed.
	SecretsLapsed bool
}

// ErrNoSession is returned for an unknown session.
var ErrNoSession = errors.New("no such session")
