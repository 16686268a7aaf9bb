package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/store"
)

// invitedDB opens a store holding one pending invitation of phone.
func invitedDB(t *testing.T, phone string) (*store.DB, *menus.Invite) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x21))
	t.Cleanup(func() { db.Close() })
	inv := &menus.Invite{ID: "lnk_claim", Kind: menus.InviteLink, Phone: phone, Reference: "ref-claim",
		Status: menus.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(24 * time.Hour)}
	if err := db.CreateInvite(context.Background(), inv, 4, t0); err != nil {
		t.Fatal(err)
	}
	return db, inv
}

// commitSession stores a session of the invitation as its hop would.
func commitSession(t *testing.T, db *store.DB, s *menus.Session) {
	t.Helper()
	if err := db.Commit(context.Background(), menus.Change{Session: s}); err != nil {
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
			_, errs[i] = db.ClaimInvite(context.Background(), menus.InviteClaim{Code: inv.Code, Phone: phone,
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
		case !errors.Is(err, menus.ErrInviteInUse):
			t.Errorf("claim: %v, want nil or ErrInviteInUse", err)
		}
	}
	if won != 1 {
		t.Errorf("%d sessions claimed the code, want 1", won)
	}
}

func TestAClaimPassesOnOnlyWhenItsSessionNoLongerHoldsIt(t *testing.T) {
	const phone = "+2348031000008"
	at := t0.Add(time.Minute)
	live := func(id string) *menus.Session {
		return &menus.Session{ID: id, Phone: phone, State: menus.StateCredentials, Invite: "lnk_claim",
			Created: at, Updated: at, Expires: at.Add(3 * time.Minute), Purge: at.Add(13 * time.Minute)}
	}
	cases := []struct {
		name   string
		holder func() *menus.Session // stored before the second claim; nil: not stored
		claim  menus.InviteClaim
		want   error
	}{
		{"a live session keeps it", func() *menus.Session { return live("s1") },
			menus.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, menus.ErrInviteInUse},
		{"a session whose first hop is not committed yet keeps it", nil,
			menus.InviteClaim{Session: "s2", Now: at.Add(time.Second)}, menus.ErrInviteInUse},
		{"the same session claims it again", func() *menus.Session { return live("s1") },
			menus.InviteClaim{Session: "s1", Now: at.Add(time.Minute)}, nil},
		{"a session resuming the holder takes it over", func() *menus.Session { return live("s1") },
			menus.InviteClaim{Session: "s2", From: "s1", Now: at.Add(time.Minute)}, nil},
		{"a session that exited lets it go", func() *menus.Session {
			s := live("s1")
			s.State, s.Reason = menus.StateEnded, menus.ReasonExit
			return s
		}, menus.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, nil},
		{"an expired session lets it go", func() *menus.Session { return live("s1") },
			menus.InviteClaim{Session: "s2", Now: at.Add(5 * time.Minute)}, nil},
		{"another phone never gets it", nil,
			menus.InviteClaim{Session: "s2", Phone: "+2348031000009", Now: at.Add(time.Hour)}, store.ErrNoInvite},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, inv := invitedDB(t, phone)
			ctx := context.Background()
			if _, err := db.ClaimInvite(ctx, menus.InviteClaim{Code: inv.Code, Phone: phone, Session: "s1", Now: at}); err != nil {
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
	newer := &menus.Invite{ID: "lnk_newer", Kind: menus.InviteLink, Phone: phone, Reference: "ref-newer",
		Status: menus.StatusPending, Created: t0.Add(time.Second), Updated: t0, Expires: t0.Add(24 * time.Hour)}
	if err := db.CreateInvite(ctx, newer, 4, t0); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Minute)
	for _, want := range []string{newer.ID, older.ID} {
		got, err := db.ClaimInvite(ctx, menus.InviteClaim{Phone: phone, Session: "for-" + want, Now: at})
		if err != nil || got.ID != want {
			t.Fatalf("claim = %v, %v; want %s", got, err, want)
		}
	}
	if _, err := db.ClaimInvite(ctx, menus.InviteClaim{Phone: phone, Session: "third", Now: at}); !errors.Is(err, menus.ErrInviteInUse) {
		t.Errorf("third claim: %v, want ErrInviteInUse", err)
	}
}
