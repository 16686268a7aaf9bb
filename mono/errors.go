package mono

import (
	"errors"
	"fmt"
	"strings"
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
	// Unknown says the request may have reached Mono but no usable answer
	// came back (the connection broke after it was written, a timeout, a
	// 5xx from Mono or a proxy): whether Mono acted is not known.
	Unknown bool
}

// Error implements error. It carries no request body, so no credential.
func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.Err != nil && e.Unknown:
		return fmt.Sprintf("mono %s: outcome unknown: %v", e.Op, e.Err)
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
	// KindUnknown: a login, commit or exchange may have reached Mono, but
	// its answer was lost. Sending it again may be refused because the
	// first one was taken: nobody may be blamed for it.
	KindUnknown
	// KindMisconfigured: Mono refused the gateway's own request (no app
	// id, an app it does not know): nothing the user typed is at fault.
	KindMisconfigured
	// KindAccountLocked: the bank refused the login because it locked or
	// disabled the account; trying again cannot help.
	KindAccountLocked
)

// Kind classifies e.
func (e *Error) Kind() Kind {
	switch {
	case e.Unknown:
		return KindUnknown
	case e.Status == 0:
		return KindTemporary
	case e.Status == 401 || e.Status == 403:
		return KindUnauthorized
	case e.Status == 404:
		return KindNotFound
	case e.Status == 429 || e.Status >= 500:
		return KindTemporary
	case misconfigured(e.Message):
		return KindMisconfigured
	case sessionGone(e.Message):
		// v2 answers a session it no longer knows with 400, like a refusal:
		// nobody typed anything wrong, and a new session is what helps.
		return KindNotFound
	case e.ResponseCode == CodeRejected || (e.Status >= 400 && e.Status < 500):
		if accountLocked(e.Message) {
			return KindAccountLocked
		}
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

// misconfiguredWords are what Mono says when the gateway's request, not the
// customer's answer, is wrong.
var misconfiguredWords = []string{"app is required", "invalid app", "app not found", "app id", "unknown app",
	"secret key", "mono-sec-key", "partners add-on", "not enabled for"}

// misconfigured reports whether Mono's message blames the gateway's setup.
func misconfigured(msg string) bool {
	return containsAny(strings.ToLower(msg), misconfiguredWords)
}

// goneWords are what Mono says of a session it no longer knows.
var goneWords = []string{"session not found", "session expired", "session has expired", "expired session",
	"invalid session", "session is invalid", "no such session", "session does not exist", "unknown session"}

// sessionGone reports whether a refusal says the connect session is gone.
func sessionGone(msg string) bool {
	return containsAny(strings.ToLower(msg), goneWords)
}

// lockedWords are what banks say when an account can no longer log in.
var lockedWords = []string{"locked", "disabled", "blocked", "suspended", "frozen", "deactivated", "restricted"}

// accountLocked reports whether a refusal says the bank locked the account.
func accountLocked(msg string) bool {
	return containsAny(strings.ToLower(msg), lockedWords)
}

// containsAny reports whether s contains one of words.
func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}
