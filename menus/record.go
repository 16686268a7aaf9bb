package menus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/wirejson"
)

// The encodings of a session's data, told apart by its first byte.
const (
	// formatJSON is the first encoding, kept readable: a JSON object.
	formatJSON = '{'
	// formatMsgpack is the current one: this byte, then the session as a
	// MessagePack map keyed by the JSON names (generated code, no
	// reflection), so fields are added and dropped as in JSON.
	formatMsgpack = 0x01
)

// encodeData encodes a session's state (never its sealed values, which
// the generated code leaves out like encoding/json) in the current format.
func encodeData(s *Session) ([]byte, error) {
	return s.MarshalMsg(append(make([]byte, 0, 1+s.Msgsize()), formatMsgpack))
}

// decodeData reads a session's state in any format it was stored in.
func decodeData(data []byte, s *Session) error {
	if len(data) == 0 {
		return errors.New("empty session data")
	}
	switch data[0] {
	case formatMsgpack:
		rest, err := s.UnmarshalMsg(data[1:])
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d bytes after the session", len(rest))
		}
		return err
	case formatJSON:
		return wirejson.Unmarshal(data, s)
	}
	return fmt.Errorf("unknown session format %#x", data[0])
}

// finished is what a finished session keeps of s: the conversation it
// was, without what only a link under way needed (the bank's login
// methods, the form, the accounts and their balances, Mono's session). A
// finished session is kept for its repeats, its outcome and the link's
// record; it is never asked for a form or an account again.
func finished(s *Session) *Session {
	if !s.Done() {
		return s
	}
	f := *s
	if f.Bank != nil {
		b := *f.Bank
		b.Methods = nil
		f.Bank = &b
	}
	f.Form, f.Accounts, f.MonoSession, f.MonoExpires, f.List, f.Filter = Form{}, nil, "", time.Time{}, List{}, ""
	f.CustomerName, f.CustomerEmail = "", ""
	if f.Counted {
		f.Visits = nil // in the funnel's counters already
	}
	return &f
}

// record encodes a session for the store: its state as data, what the user
// typed as the secrets the store seals (as JSON with jsonSealed, else in
// the current format). A finished session is stored as finished keeps it.
func record(s *Session, jsonSealed bool) (*link.SessionRecord, error) {
	data, err := encodeData(finished(s))
	if err != nil {
		return nil, fmt.Errorf("encode session %s: %w", s.ID, err)
	}
	r := &link.SessionRecord{ID: s.ID, Phone: s.Phone, Updated: s.Updated, Purge: s.Purge, Data: data}
	if r.Purge.IsZero() {
		r.Purge = s.Expires
	}
	if len(s.Answers) > 0 || len(s.Login) > 0 {
		if r.Secrets, err = sealValues(s, jsonSealed); err != nil {
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
	if err := decodeData(r.Data, s); err != nil {
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

// session loads a stored session, or link.ErrNoSession.
func (e *Engine) session(ctx context.Context, id string) (*Session, error) {
	r, err := e.store.Session(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.decode(r)
}

// latest loads a phone's most recent session, or link.ErrNoSession.
func (e *Engine) latest(ctx context.Context, phone string) (*Session, error) {
	r, err := e.store.Latest(ctx, phone)
	if err != nil {
		return nil, err
	}
	return e.decode(r)
}

// decode reads a stored session; one stored before it spoke a language
// speaks the default.
func (e *Engine) decode(r *link.SessionRecord) (*Session, error) {
	s, err := decode(r)
	if err == nil && s.Lang == "" {
		s.Lang = e.spoken
	}
	return s, err
}

// commit makes a change durable with its session s, and a session it
// retired, encoded for the store.
func (e *Engine) commit(ctx context.Context, c link.Change, s, retired *Session) error {
	var err error
	now := e.now()
	c.Funnel = s.count(now, e.cfg.Networks)
	if retired != nil {
		c.RetiredFunnel = retired.count(now, e.cfg.Networks) // none when resumed: see count
	}
	if c.Session, err = record(s, e.cfg.SealedJSON); err != nil {
		return err
	}
	defer clear(c.Session.Secrets)
	if retired != nil {
		if c.Retired, err = record(retired, e.cfg.SealedJSON); err != nil {
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
			if decodeData(holder.Data, s) != nil {
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

// Record encodes a session as the store keeps it, its typed values among
// the secrets the store seals: for tools that fill a store, such as the
// seed command.
func Record(s *Session) (*link.SessionRecord, error) { return record(s, false) }
