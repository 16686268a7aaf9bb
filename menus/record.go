package menus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// sealedValues is what a session keeps only sealed: the current form's
// answers and the login answers kept for a fresh login.
type sealedValues struct {
	Answers map[string]string `json:"answers,omitempty"`
	Login   map[string]string `json:"login,omitempty"`
}

// record encodes a session for the store: its state as data, what the user
// typed as the secrets the store seals.
func record(s *Session) (*link.SessionRecord, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode session %s: %w", s.ID, err)
	}
	r := &link.SessionRecord{ID: s.ID, Phone: s.Phone, Updated: s.Updated, Purge: s.Purge, Data: data}
	if r.Purge.IsZero() {
		r.Purge = s.Expires
	}
	if len(s.Answers) > 0 || len(s.Login) > 0 {
		if r.Secrets, err = json.Marshal(sealedValues{Answers: s.Answers, Login: s.Login}); err != nil {
			return nil, fmt.Errorf("encode session %s answers: %w", s.ID, err)
		}
		r.Lapse = s.SealedUntil
	}
	return r, nil
}

// decode reads a stored session back, with its secrets when the store
// could open them. It erases the record's plain secrets once read.
func decode(r *link.SessionRecord) (*Session, error) {
	s := new(Session)
	if err := json.Unmarshal(r.Data, s); err != nil {
		return nil, fmt.Errorf("decode session %s: %w", r.ID, err)
	}
	s.SecretsLost = r.SecretsLost
	if r.SecretsLapsed {
		// The sweeper erased the answers when they lapsed: nothing typed
		// is left to date.
		s.AnswersAt, s.LoginAt, s.SealedUntil = time.Time{}, time.Time{}, time.Time{}
	}
	if len(r.Secrets) > 0 {
		err := openValues(r.Secrets, s)
		clear(r.Secrets)
		if err != nil {
			return nil, fmt.Errorf("session %s answers: %w", r.ID, err)
		}
	}
	return s, nil
}

// openValues reads sealed values into s. Values sealed before login
// answers were kept hold the form's answers alone.
func openValues(plain []byte, s *Session) error {
	var v sealedValues
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if dec.Decode(&v) == nil {
		s.Answers, s.Login = v.Answers, v.Login
		return nil
	}
	return json.Unmarshal(plain, &s.Answers)
}

// session loads a stored session, or link.ErrNoSession.
func (e *Engine) session(ctx context.Context, id string) (*Session, error) {
	r, err := e.store.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	return decode(r)
}

// latest loads a phone's most recent session, or link.ErrNoSession.
func (e *Engine) latest(ctx context.Context, phone string) (*Session, error) {
	r, err := e.store.Latest(ctx, phone)
	if err != nil {
		return nil, err
	}
	return decode(r)
}

// commit makes a change durable with its session s, and a session it
// retired, encoded for the store.
func (e *Engine) commit(ctx context.Context, c link.Change, s, retired *Session) error {
	var err error
	if c.Session, err = record(s); err != nil {
		return err
	}
	defer clear(c.Session.Secrets)
	if retired != nil {
		if c.Retired, err = record(retired); err != nil {
			return err
		}
		defer clear(c.Retired.Secrets)
	}
	return e.store.Commit(ctx, c)
}

// holds is the claim policy the store applies: whether the stored session
// that claimed an invitation still holds it (Session.HoldsInvite).
func holds(now time.Time) func(*link.Invite, *link.SessionRecord) bool {
	return func(inv *link.Invite, holder *link.SessionRecord) bool {
		var s *Session
		if holder != nil {
			s = new(Session)
			if json.Unmarshal(holder.Data, s) != nil {
				return false
			}
		}
		return s.HoldsInvite(inv, now)
	}
}

// Decode reads a stored session record back into the conversation it
// holds, with its secrets when the store could open them: for tools and
// tests that look into the store.
func Decode(r *link.SessionRecord) (*Session, error) { return decode(r) }
