package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// invitedDB opens a store holding one pending invitation of phone.
func invitedDB(t *testing.T, phone string) (*store.DB, *link.Invite) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x21))
	t.Cleanup(func() { db.Close() })
	inv := &link.Invite{ID: "lnk_claim", Kind: link.InviteLink, Phone: phone, Reference: "ref-claim",
		Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(24 * time.Hour)}
	if err := db.CreateInvite(context.Background(), inv, 4, t0); err != nil {
		t.Fatal(err)
	}
	return db, inv
}

// commitSession stores a session of the invitation as its hop would.
func commitSession(t *testing.T, db *store.DB, s *link.SessionRecord) {
	t.Helper()
	if err := db.Commit(context.Background(), link.Change{Session: s}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentClaimsOfOneCodeGiveItToOneSession(t *testing.T) {
	const phone = "+2348031000007"
	db, inv := invitedDB(t, phone)
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = db.ClaimInvite(context.Background(), link.InviteClaim{Code: inv.Code, Phone: phone,
				Session: "s" + string(rune('a'+i)), Now: t0.Add(time.Second)})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, link.ErrInviteInUse):
			t.Errorf("claim: %v, want nil or ErrInviteInUse", err)
		}
	}
	if won != 1 {
		t.Errorf("%d sessions claimed the code, want 1", won)
	}
}

// claimGrace is how long the test policy lets a claim stand for a session
// not stored yet, or past its expiry.
const claimGrace = time.Minute

// holds is a claim policy as the conversation's: a session not stored (or
// stored before its claim) holds the invitation for claimGrace from the
// claim; a stored one while it follows the invitation, has not ended and has
// not expired (with the grace). It refuses to be shown sealed secrets.
func holds(t *testing.T, now time.Time) func(*link.Invite, *link.SessionRecord) bool {
	return func(inv *link.Invite, holder *link.SessionRecord) bool {
		if holder == nil || holder.Updated.Before(inv.Claimed) {
			return now.Before(inv.Claimed.Add(claimGrace))
		}
		if holder.Secrets != nil {
			t.Errorf("the claim policy was shown the holder's secrets")
		}
		c := stateOf(t, holder)
		return c.Invite == inv.ID && c.State != "ended" && now.Before(c.Expires.Add(claimGrace))
	}
}

func TestAClaimPassesOnOnlyWhenItsSessionNoLongerHoldsIt(t *testing.T) {
	const phone = "+2348031000008"
	at := t0.Add(time.Minute)
	live := func(id string) *link.SessionRecord {
		r := record(id, phone, conversation{State: "credentials", Invite: "lnk_claim", Expires: at.Add(3 * time.Minute)})
		r.Updated, r.Purge = at, at.Add(13*time.Minute)
		r.Secrets, r.Lapse = secrets(map[string]string{"password": "typed"}), at.Add(2*time.Minute)
		return r
	}
	cases := []struct {
		name     string
		holder   func() *link.SessionRecord // stored before the second claim; nil: not stored
		claim    link.InviteClaim
		noPolicy bool // the claim has no Holds
		want     error
	}{
		{"a live session keeps it", func() *link.SessionRecord { return live("s1") },
			link.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, false, link.ErrInviteInUse},
		{"a session whose first hop is not committed yet keeps it", nil,
			link.InviteClaim{Session: "s2", Now: at.Add(time.Second)}, false, link.ErrInviteInUse},
		{"the same session claims it again", func() *link.SessionRecord { return live("s1") },
			link.InviteClaim{Session: "s1", Now: at.Add(time.Minute)}, false, nil},
		{"a session resuming the holder takes it over", func() *link.SessionRecord { return live("s1") },
			link.InviteClaim{Session: "s2", From: "s1", Now: at.Add(time.Minute)}, false, nil},
		{"a session that exited lets it go", func() *link.SessionRecord {
			s := live("s1")
			s.Data = conversation{State: "ended", Reason: "exit", Invite: "lnk_claim", Expires: at.Add(3 * time.Minute)}.encode()
			return s
		}, link.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, false, nil},
		{"an expired session lets it go", func() *link.SessionRecord { return live("s1") },
			link.InviteClaim{Session: "s2", Now: at.Add(5 * time.Minute)}, false, nil},
		{"without a policy a held invitation stays held", func() *link.SessionRecord { return live("s1") },
			link.InviteClaim{Session: "s2", Now: at.Add(5 * time.Minute)}, true, link.ErrInviteInUse},
		{"another phone never gets it", nil,
			link.InviteClaim{Session: "s2", Phone: "+2348031000009", Now: at.Add(time.Hour)}, false, link.ErrNoInvite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, inv := invitedDB(t, phone)
			ctx := context.Background()
			if _, err := db.ClaimInvite(ctx, link.InviteClaim{Code: inv.Code, Phone: phone, Session: "s1", Now: at}); err != nil {
				t.Fatalf("first claim: %v", err)
			}
			if c.holder != nil {
				commitSession(t, db, c.holder())
			}
			claim := c.claim
			claim.Code = inv.Code
			if claim.Phone == "" {
				claim.Phone = phone
			}
			if !c.noPolicy {
				claim.Holds = holds(t, claim.Now)
			}
			got, err := db.ClaimInvite(ctx, claim)
			if !errors.Is(err, c.want) {
				t.Fatalf("second claim: %v, want %v", err, c.want)
			}
			if err == nil && (got.Session != claim.Session || got.Reference != "ref-claim") {
				t.Errorf("claimed invitation = %+v", got)
			}
		})
	}
}

func TestAPlainDialClaimsThePhonesNewestFreeInvitation(t *testing.T) {
	const phone = "+2348031000010"
	db, older := invitedDB(t, phone)
	ctx := context.Background()
	newer := &link.Invite{ID: "lnk_newer", Kind: link.InviteLink, Phone: phone, Reference: "ref-newer",
		Status: link.StatusPending, Created: t0.Add(time.Second), Updated: t0, Expires: t0.Add(24 * time.Hour)}
	if err := db.CreateInvite(ctx, newer, 4, t0); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	for _, want := range []string{newer.ID, older.ID} {
		got, err := db.ClaimInvite(ctx, link.InviteClaim{Phone: phone, Session: "for-" + want, Now: at})
		if err != nil || got.ID != want {
			t.Fatalf("claim = %v, %v; want %s", got, err, want)
		}
	}
	if _, err := db.ClaimInvite(ctx, link.InviteClaim{Phone: phone, Session: "third", Now: at}); !errors.Is(err, link.ErrInviteInUse) {
		t.Errorf("third claim: %v, want ErrInviteInUse", err)
	}
}
