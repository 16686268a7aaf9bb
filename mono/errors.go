package mono

import (
	"errors"
	"fmt"
)

// Error is a non-success answer from Mono: an HTTP status other than 2xx, or a
// 2xx whose responseCode says the step was refused. Message is Mono's own
// wording, kept for logs; it is never shown to users as it is.
type Error struct {
	Op           string // the call, e.g. "login"
	Status       int    // HTTP status; 0 when the request never got an answer
	ResponseCode int    // Mono's responseCode, when it sent one
	Message      string // Mono's message
	Err          error  // the transport error, when Status is 0
}

// Error implements error. It carries no request body, so no credential.
func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.Err != nil:
		return fmt.Sprintf("mono %s: %v", e.Op, e.Err)
	case e.ResponseCode != 0:
		return fmt.Sprintf("mono %s: status %d, responseCode %d: %s", e.Op, e.Status, e.ResponseCode, e.Message)
	default:
		return fmt.Sprintf("mono %s: status %d: %s", e.Op, e.Status, e.Message)
	}
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Kind classifies an error so callers can decide what a user sees.
type Kind int

// Kinds of failure, from the caller's point of view.
const (
	KindOther        Kind = iota // anything else: show a generic failure
	KindRejected                 // the bank refused what the user typed: let them try again
	KindUnauthorized             // bad key or no Partners add-on: nobody can link
	KindNotFound                 // unknown or expired session, code or account
	KindTemporary                // network error, timeout, 429 or 5xx: worth retrying
)

// Kind classifies e.
func (e *Error) Kind() Kind {
	switch {
	case e.Status == 0:
		return KindTemporary
	case e.Status == 401 || e.Status == 403:
		return KindUnauthorized
	case e.Status == 404:
		return KindNotFound
	case e.Status == 429 || e.Status >= 500:
		return KindTemporary
	case e.ResponseCode == CodeRejected || (e.Status >= 400 && e.Status < 500):
		return KindRejected
	}
	return KindOther
}

// KindOf classifies any error: a *Error by its Kind, anything else as other.
func KindOf(err error) Kind {
	var me *Error
	if errors.As(err, &me) {
		return me.Kind()
	}
	return KindOther
}
