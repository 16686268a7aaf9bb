package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
	bolt "go.etcd.io/bbolt"
)

// Invitation buckets.
var (
	bucketInvites      = []byte("invites")        // invite id → Invite
	bucketInviteCodes  = []byte("invite_codes")   // code → id, while the invite may be used
	bucketInvitePhone  = []byte("invite_phone")   // phone key + 0 + created (8 bytes BE) + id → nil
	bucketInviteRef    = []byte("invite_ref")     // reference + 0 + id → nil
	bucketReauthOf     = []byte("reauth_of")      // account id → id of its latest reauth invite
	bucketIdempotency  = []byte("idempotency")    // scope + key → stored answer
	bucketMonoEvents   = []byte("mono_events")    // Mono event id → time seen
	bucketMonoEventAge = []byte("mono_event_age") // time seen (8 bytes BE) + event id → nil
)

// CreateInvite stores a new invitation, giving it a code of digits that no
// usable invitation holds (codes of finished or expired ones are reused).
func (db *DB) CreateInvite(ctx context.Context, inv *link.Invite, digits int, now time.Time) error {
	return db.CreateInviteWith(ctx, inv, digits, now, nil)
}

// CreateInviteWith is CreateInvite that also queues the texts announcing
// the invitation (which need its code) in the same transaction.
func (db *DB) CreateInviteWith(ctx context.Context, inv *link.Invite, digits int, now time.Time, texts func(*link.Invite) []link.Text) error {
	return db.CreateInviteAnswered(ctx, inv, digits, now, texts, "", nil)
}

// CreateInviteAnswered is CreateInviteWith that also stores, under an
// idempotency key, the API answer that answer builds from the invitation
// once it has its code. The invitation, its texts and the answer reporting
// it commit together: a retry after a crash finds both or neither, so it
// never creates a second invitation nor replays one that was lost. An
// empty key stores no answer.
func (db *DB) CreateInviteAnswered(_ context.Context, inv *link.Invite, digits int, now time.Time,
	texts func(*link.Invite) []link.Text, key string, answer func(*link.Invite) (link.Answer, error)) error {
	q := db.Texts()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := allocateCode(tx, inv, digits, now); err != nil {
			return err
		}
		if err := putInvite(tx, inv); err != nil {
			return err
		}
		if key != "" && answer != nil {
			a, err := answer(inv)
			if err != nil {
				return err
			}
			if err := putAnswer(tx, key, a); err != nil {
				return err
			}
		}
		if texts == nil {
			return nil
		}
		msgs, err := kit.TextMessages(texts(inv))
		if err != nil {
			return err
		}
		return q.put(tx, msgs)
	})
	if err != nil {
		return fmt.Errorf("create invite: %w", err)
	}
	return nil
}

// allocateCode gives an invitation a code of digits that no usable
// invitation holds (codes of finished or expired ones are reused).
func allocateCode(tx *bolt.Tx, inv *link.Invite, digits int, now time.Time) error {
	codes, invites := tx.Bucket(bucketInviteCodes), tx.Bucket(bucketInvites)
	for try := 0; ; try++ {
		n := digits + try/20 // a crowded space grows a digit every 20 tries
		code, err := kit.RandomCode(n)
		if err != nil {
			return err
		}
		if id := codes.Get([]byte(code)); id != nil {
			if held := getInvite(invites, id); held != nil && held.StatusAt(now) == link.StatusPending {
				continue
			}
		}
		inv.Code = code
		return nil
	}
}

// putInvite writes an invitation and its indexes; its code stays indexed
// only while it is pending.
func putInvite(tx *bolt.Tx, inv *link.Invite) error {
	data, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	id := []byte(inv.ID)
	if err := indexInviteAge(tx, inv); err != nil {
		return err
	}
	if err := tx.Bucket(bucketInvites).Put(id, data); err != nil {
		return err
	}
	codes := tx.Bucket(bucketInviteCodes)
	if inv.Status == link.StatusPending {
		if err := codes.Put([]byte(inv.Code), id); err != nil {
			return err
		}
	} else if bytes.Equal(codes.Get([]byte(inv.Code)), id) {
		if err := codes.Delete([]byte(inv.Code)); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketInvitePhone).Put(invitePhoneKey(inv), nil); err != nil {
		return err
	}
	if inv.Reference != "" {
		if err := tx.Bucket(bucketInviteRef).Put([]byte(inv.Reference+"\x00"+inv.ID), nil); err != nil {
			return err
		}
	}
	if inv.Kind == link.InviteReauth && inv.AccountID != "" {
		return tx.Bucket(bucketReauthOf).Put([]byte(inv.AccountID), id)
	}
	return nil
}

// getInvite reads an invitation inside a transaction, or nil.
func getInvite(b *bolt.Bucket, id []byte) *link.Invite {
	v := b.Get(id)
	if v == nil {
		return nil
	}
	inv := new(link.Invite)
	if json.Unmarshal(v, inv) != nil {
		return nil
	}
	return inv
}

// Invite returns an invitation by id, or link.ErrNoInvite.
func (db *DB) Invite(_ context.Context, id string) (*link.Invite, error) {
	var inv *link.Invite
	err := db.bolt.View(func(tx *bolt.Tx) error {
		inv = getInvite(tx.Bucket(bucketInvites), []byte(id))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read invite: %w", err)
	}
	if inv == nil {
		return nil, link.ErrNoInvite
	}
	return inv, nil
}

// InviteByCode returns the pending invitation holding a code, or link.ErrNoInvite.
func (db *DB) InviteByCode(_ context.Context, code string) (*link.Invite, error) {
	return db.inviteVia(bucketInviteCodes, code)
}

// inviteVia reads the invitation an index names under key, or link.ErrNoInvite.
func (db *DB) inviteVia(index []byte, key string) (*link.Invite, error) {
	var inv *link.Invite
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if id := tx.Bucket(index).Get([]byte(key)); id != nil {
			inv = getInvite(tx.Bucket(bucketInvites), id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read invite: %w", err)
	}
	if inv == nil {
		return nil, link.ErrNoInvite
	}
	return inv, nil
}

// PendingInvite returns the most recent invitation of a phone that can
// still be used at now, or link.ErrNoInvite.
func (db *DB) PendingInvite(ctx context.Context, phone string, now time.Time) (*link.Invite, error) {
	all, err := db.InvitesByPhone(ctx, phone)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Usable(phone, now) {
			return &all[i], nil
		}
	}
	return nil, link.ErrNoInvite
}

// InvitesByPhone returns a phone's invitations, oldest first.
func (db *DB) InvitesByPhone(_ context.Context, phone string) ([]link.Invite, error) {
	prefix := append([]byte(link.PhoneKey(phone)), 0)
	return db.invitesUnder(bucketInvitePhone, prefix, func(k []byte) []byte { return k[len(prefix)+8:] })
}

// InvitesByReference returns the invitations carrying a partner reference.
func (db *DB) InvitesByReference(_ context.Context, ref string) ([]link.Invite, error) {
	prefix := []byte(ref + "\x00")
	return db.invitesUnder(bucketInviteRef, prefix, func(k []byte) []byte { return k[len(prefix):] })
}

// invitesUnder reads the invitations an index lists under a prefix.
func (db *DB) invitesUnder(index, prefix []byte, id func(k []byte) []byte) ([]link.Invite, error) {
	var out []link.Invite
	err := db.bolt.View(func(tx *bolt.Tx) error {
		invites := tx.Bucket(bucketInvites)
		c := tx.Bucket(index).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if inv := getInvite(invites, id(k)); inv != nil {
				out = append(out, *inv)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read invites: %w", err)
	}
	return out, nil
}

// ReauthOf returns the latest reauthorisation invitation of an account, or
// link.ErrNoInvite.
func (db *DB) ReauthOf(_ context.Context, accountID string) (*link.Invite, error) {
	return db.inviteVia(bucketReauthOf, accountID)
}

// Idempotent returns the answer stored under key, if any.
func (db *DB) Idempotent(_ context.Context, key string) (*link.Answer, bool, error) {
	var a *link.Answer
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketIdempotency).Get([]byte(key)); v != nil {
			a = new(link.Answer)
			return json.Unmarshal(v, a)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read idempotency key: %w", err)
	}
	return a, a != nil, nil
}

// SaveAnswer stores an API answer under an idempotency key (replacing an
// expired one), indexed by its age for SweepAnswers.
func (db *DB) SaveAnswer(_ context.Context, key string, a link.Answer) error {
	err := db.bolt.Update(func(tx *bolt.Tx) error { return putAnswer(tx, key, a) })
	if err != nil {
		return fmt.Errorf("save idempotency answer: %w", err)
	}
	return nil
}

// MonoEvent applies one of Mono's webhooks exactly once: if eventID was
// seen before it does nothing and returns false. Otherwise, in one
// transaction, it hands apply the link of accountID and its latest reauth
// invitation (either may be nil), writes back what apply changed (and what
// Mono changed in the link, its data status and unlinking, into the
// invitations carrying it and into the reauthorisation), enqueues the events
// and the nudge apply decided, remembers the account update apply returned,
// and remembers the event id. A nudge carrying the stored reauth invitation
// (the same id) reuses it as written back; any other is stored as a new
// invitation with a fresh code of out.CodeDigits digits.
func (db *DB) MonoEvent(_ context.Context, eventID string, at time.Time, accountID string,
	apply func(l *link.Link, reauth *link.Invite) link.MonoOutcome) (bool, error) {
	applied := false
	texts := db.Texts()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketMonoEvents)
		if seen.Get([]byte(eventID)) != nil {
			return nil
		}
		var l *link.Link
		if v := tx.Bucket(bucketLinks).Get([]byte(accountID)); v != nil {
			l = new(link.Link)
			if err := decodeLink(v, l); err != nil {
				return err
			}
		}
		var reauth *link.Invite
		if id := tx.Bucket(bucketReauthOf).Get([]byte(accountID)); id != nil {
			reauth = getInvite(tx.Bucket(bucketInvites), id)
		}
		out := apply(l, reauth)
		if out.Update != nil {
			if err := rememberUpdate(tx, *out.Update); err != nil {
				return err
			}
		}
		if l != nil {
			data, err := encodeLink(l)
			if err != nil {
				return err
			}
			if err := putLink(tx, l, data); err != nil {
				return err
			}
			if err := syncInviteLinks(tx, l); err != nil {
				return err
			}
		}
		if reauth != nil {
			reauth = kit.WithLinkStatus(reauth, l) // as the invitations carrying the link
			if err := putInvite(tx, reauth); err != nil {
				return err
			}
		}
		if out.Nudge != nil && out.NudgeText != nil {
			inv := out.Nudge
			if reauth != nil && inv.ID == reauth.ID {
				inv = reauth // the stored invitation, written back above
			} else {
				if out.CodeDigits < 1 {
					return fmt.Errorf("nudge invitation %s: %d code digits, want at least 1", inv.ID, out.CodeDigits)
				}
				if err := allocateCode(tx, inv, out.CodeDigits, at); err != nil {
					return err
				}
				if err := putInvite(tx, inv); err != nil {
					return err
				}
			}
			msgs, err := kit.TextMessages([]link.Text{out.NudgeText(inv)})
			if err != nil {
				return err
			}
			if err := texts.put(tx, msgs); err != nil {
				return err
			}
		}
		msgs, err := kit.EventMessages(out.Events)
		if err != nil {
			return err
		}
		if err := putMessages(tx, msgs); err != nil {
			return err
		}
		if err := seen.Put([]byte(eventID), binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
			return err
		}
		applied = true
		return tx.Bucket(bucketMonoEventAge).Put(expiryKey(at, []byte(eventID)), nil)
	})
	if err != nil {
		return false, fmt.Errorf("apply mono event %s: %w", eventID, err)
	}
	return applied, nil
}

// SweepMonoEvents forgets Mono event ids seen before a time (Mono retries
// for about 48 hours: older ids cannot come back).
func (db *DB) SweepMonoEvents(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketMonoEvents)
		var err error
		n, err = due(tx.Bucket(bucketMonoEventAge), before, max, func(k []byte) error {
			return seen.Delete(k[8:])
		})
		return err
	})
	return n, err
}
