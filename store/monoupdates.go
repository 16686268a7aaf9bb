package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
	bolt "go.etcd.io/bbolt"
)

// Buckets of Mono's account updates, remembered whether or not a link
// exists yet.
var (
	bucketMonoUpdates   = []byte("mono_updates")    // account id → link.MonoUpdate, the latest received
	bucketMonoUpdateAge = []byte("mono_update_age") // received (8 bytes BE) + account id → nil, for sweeping
)

// MonoUpdateTTL is how long an account update is remembered: past it, no
// link still being made can be the one it is about (Mono sessions last
// minutes). The sweeper forgets older ones.
const MonoUpdateTTL = time.Hour

// LinkUpdates decides, inside the commit of a new link (no stored link of
// the account from the same session), whether it takes the account's
// remembered account_updated, and which partner events announce it. It
// must not touch anything else: it runs inside the commit.
//
// l is the link as the hop committed it (a copy: changing it changes
// nothing), u the account's remembered update, always with a data status.
// The events are queued only when take is true.
type LinkUpdates func(l *link.Link, u link.MonoUpdate) (take bool, events []link.Event)

// WithLinkUpdates makes Commit offer a new link its account's remembered
// update through f, which decides whether the link takes its data status
// and how the partner hears of it. The store holds no rule of its own about
// which update applies: without this option no remembered update is
// applied, and a new link keeps the status it was committed with.
func WithLinkUpdates(f LinkUpdates) Option {
	return func(db *DB) { db.linkUpdates = f }
}

// rememberUpdate keeps u as its account's latest update, replacing (and
// unindexing) the one before.
func rememberUpdate(tx *bolt.Tx, u link.MonoUpdate) error {
	if u.AccountID == "" {
		return nil
	}
	updates, age := tx.Bucket(bucketMonoUpdates), tx.Bucket(bucketMonoUpdateAge)
	id := []byte(u.AccountID)
	if prev := latestUpdate(tx, u.AccountID); prev != nil {
		if err := age.Delete(expiryKey(prev.Received, id)); err != nil {
			return err
		}
	}
	data, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode account update: %w", err)
	}
	if err := updates.Put(id, data); err != nil {
		return err
	}
	return age.Put(expiryKey(u.Received, id), nil)
}

// latestUpdate returns the remembered update of an account, or nil.
func latestUpdate(tx *bolt.Tx, accountID string) *link.MonoUpdate {
	v := tx.Bucket(bucketMonoUpdates).Get([]byte(accountID))
	if v == nil {
		return nil
	}
	u := new(link.MonoUpdate)
	if json.Unmarshal(v, u) != nil {
		return nil
	}
	return u
}

// LatestUpdate returns the remembered account_updated of an account, if
// one is still kept.
func (db *DB) LatestUpdate(_ context.Context, accountID string) (*link.MonoUpdate, bool, error) {
	var u *link.MonoUpdate
	err := db.bolt.View(func(tx *bolt.Tx) error {
		u = latestUpdate(tx, accountID)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read account update: %w", err)
	}
	return u, u != nil, nil
}

// SweepMonoUpdates forgets account updates received before a time, at most
// max of them, walking their age index. It returns how many it forgot.
func (db *DB) SweepMonoUpdates(_ context.Context, before time.Time, max int) (int, error) {
	n := 0
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		updates := tx.Bucket(bucketMonoUpdates)
		var err error
		n, err = due(tx.Bucket(bucketMonoUpdateAge), before, max, func(k []byte) error {
			return updates.Delete(k[8:])
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep account updates: %w", err)
	}
	return n, nil
}

// linkWrite is a link as a commit writes it, with what a remembered update
// added: the link (a copy when it changed), its encoding, and the events
// announcing the status.
type linkWrite struct {
	link   *link.Link
	data   []byte
	events []link.Message
}

// prepareLink decides how a commit writes l. A new link (no stored link of
// the account from the same session) is offered the account's remembered
// update, when it has a data status, through the LinkUpdates option: when
// it takes it, the link (a copy) gets its status and the partner hears it
// after the link's own events. A link written again (a reauthorisation)
// keeps the status Mono's webhooks gave the stored one.
func (db *DB) prepareLink(tx *bolt.Tx, l *link.Link) (linkWrite, error) {
	w := linkWrite{link: l}
	var stored *link.Link
	if v := tx.Bucket(bucketLinks).Get([]byte(l.AccountID)); v != nil {
		stored = new(link.Link)
		if decodeLink(v, stored) != nil {
			stored = nil
		}
	}
	switch {
	case stored != nil && stored.SessionID == l.SessionID:
		if stored.DataStatus != l.DataStatus {
			cp := *l
			cp.DataStatus = stored.DataStatus
			w.link = &cp
		}
	case db.linkUpdates != nil:
		u := latestUpdate(tx, l.AccountID)
		if u == nil || u.DataStatus == "" {
			break
		}
		offered := *l // the policy's own copy: what it does to it is not written
		take, events := db.linkUpdates(&offered, *u)
		if !take {
			break
		}
		cp := *l
		cp.DataStatus = u.DataStatus
		w.link = &cp
		msgs, err := kit.EventMessages(events)
		if err != nil {
			return w, fmt.Errorf("announce the account update a new link took: %w", err)
		}
		w.events = msgs
	}
	data, err := encodeLink(w.link)
	if err != nil {
		return w, fmt.Errorf("encode link: %w", err)
	}
	w.data = data
	return w, nil
}

// syncInviteLinks gives the invitations that carry l (found through its
// reference, made by its session) what Mono changed in l (its data status,
// its unlinking), so the partner API shows it.
func syncInviteLinks(tx *bolt.Tx, l *link.Link) error {
	if l == nil || l.Reference == "" {
		return nil
	}
	invites := tx.Bucket(bucketInvites)
	prefix := []byte(l.Reference + "\x00")
	var changed []*link.Invite
	c := tx.Bucket(bucketInviteRef).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		inv := getInvite(invites, k[len(prefix):])
		if inv == nil || inv.Link == nil || inv.Link.SessionID != l.SessionID {
			continue
		}
		if w := kit.WithLinkStatus(inv, l); w != inv {
			changed = append(changed, w)
		}
	}
	for _, inv := range changed { // written once the cursor is done with the bucket
		if err := putInvite(tx, inv); err != nil {
			return err
		}
	}
	return nil
}
