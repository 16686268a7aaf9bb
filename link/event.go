package link

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Types of the events partners hear about, named as the Connect widget
// names them, plus what Mono's own webhooks tell.
const (
	TypeOpened                = "OPENED"
	TypeInstitutionSelected   = "INSTITUTION_SELECTED"
	TypeAuthMethodSwitched    = "AUTH_METHOD_SWITCHED"
	TypeSubmitCredentials     = "SUBMIT_CREDENTIALS"
	TypeSubmitMFA             = "SUBMIT_MFA"
	TypeAccountSelected       = "ACCOUNT_SELECTED"
	TypeAccountLinked         = "ACCOUNT_LINKED"
	TypeExit                  = "EXIT"
	TypeError                 = "ERROR"
	TypeAccountReauthorised   = "ACCOUNT_REAUTHORISED"
	TypeDataStatus            = "DATA_STATUS"
	TypeReauthorisationNeeded = "REAUTHORISATION_REQUIRED"
	TypeAccountUnlinked       = "ACCOUNT_UNLINKED"
	TypeSyncFailed            = "SYNC_FAILED"
)

// EventTypes lists every event type, for configuration checks.
var EventTypes = []string{TypeOpened, TypeInstitutionSelected, TypeAuthMethodSwitched, TypeSubmitCredentials,
	TypeSubmitMFA, TypeAccountSelected, TypeAccountLinked, TypeExit, TypeError, TypeAccountReauthorised,
	TypeDataStatus, TypeReauthorisationNeeded, TypeAccountUnlinked, TypeSyncFailed}

// NewEventID returns a fresh webhook id.
func NewEventID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

// Event is something the partner hears about, as the Connect widget would
// report it: OPENED, INSTITUTION_SELECTED, ACCOUNT_LINKED, … It goes through
// the outbox, so it is committed with the state that produced it.
type Event struct {
	ID        string         `json:"id"` // the webhook-id: stable across retries
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
	// RequestID is the id of the callback that caused the event (see
	// package reqid), so a partner's report can be matched to the
	// gateway's and Mono's logs; empty for events no callback caused.
	RequestID string `json:"request_id,omitempty"`
}
