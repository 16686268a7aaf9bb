package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/store"
)

// statusEvent is a DATA_STATUS as the partner package builds it.
func statusEvent(l *menus.Link, u store.MonoUpdate) []menus.Event {
	return []menus.Event{{ID: "msg_status_" + l.SessionID, Type: menus.TypeDataStatus, Timestamp: l.Linked,
		Data: map[string]any{"account_id": l.AccountID, "phone": l.Phone, "reference": l.Reference, "data_status": u.DataStatus}}}
}

// accountUpdated applies an account_updated as the webhook receiver does:
// remembered, and set on the link when there is one.
func accountUpdated(t *testing.T, db *store.DB, eventID, account, status string, at time.Time) {
	t.Helper()
	_, err := db.MonoEvent(context.Background(), eventID, at, account, func(link *menus.Link, _ *menus.Invite) store.MonoOutcome {
		if link != nil {
			link.DataStatus = status
		}
		return store.MonoOutcome{Update: &store.MonoUpdate{AccountID: account, DataStatus: status, Received: at}}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// linkedChange is the commit of a hop that linked account from phone under
// an invitation.
func linkedChange(account, phone, session string, inv *menus.Invite, at time.Time) menus.Change {
	l := fullLink(account, phone, session)
	l.Reference, l.Linked = inv.Reference, at
	settled := *inv
	settled.Status, settled.Link, settled.AccountID, settled.Session = menus.StatusLinked, l, account, session
	return menus.Change{
		Session: &menus.Session{ID: session, Phone: phone, State: menus.StateLinked, Link: l, Invite: inv.ID,
			Created: at, Updated: at, Expires: at.Add(time.Minute)},
		Link:   l,
		Invite: &settled,
		Events: []menus.Event{{ID: "msg_linked_" + session, Type: menus.TypeAccountLinked, Timestamp: at,
			Data: map[string]any{"account_id": account, "phone": phone}}},
	}
}

// outboxTypes drains the outbox as the deliverer does, one message at a
// time, and returns the messages in the order they left.
func outboxTypes(t *testing.T, db *store.DB, now time.Time) []store.Message {
	t.Helper()
	ctx := context.Background()
	var out []store.Message
	for range 100 {
		msgs, err := db.Due(ctx, now.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs[0])
		if err := db.Delivered(ctx, msgs[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the outbox does not drain")
	return nil
}

func TestAnUpdateBeforeTheLinkIsAppliedWhenTheLinkCommits(t *testing.T) {
	cases := []struct {
		name       string
		received   time.Duration // before the link commits
		wantStatus string
	}{
		{"an update received while the link was being made", 30 * time.Second, "AVAILABLE"},
		{"an update from before the flow could have begun", store.LinkUpdateWindow + time.Second, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x22), store.WithStatusEvents(statusEvent))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			const phone, account = "+2348031000020", "acc-early"
			inv := &menus.Invite{ID: "lnk_early", Kind: menus.InviteLink, Phone: phone, Reference: "ref-early",
				Status: menus.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
			if err := db.CreateInvite(ctx, inv, 4, t0); err != nil {
				t.Fatal(err)
			}
			linkAt := t0.Add(20 * time.Minute)
			accountUpdated(t, db, "evt_early", account, "AVAILABLE", linkAt.Add(-c.received))
			if err := db.Commit(ctx, linkedChange(account, phone, "s-early", inv, linkAt)); err != nil {
				t.Fatal(err)
			}

			l, _, _ := db.Link(ctx, account)
			got, _ := db.Invite(ctx, inv.ID)
			if l.DataStatus != c.wantStatus || got.Link.DataStatus != c.wantStatus {
				t.Errorf("data status of link, invitation = %q, %q; want %q", l.DataStatus, got.Link.DataStatus, c.wantStatus)
			}
			msgs := outboxTypes(t, db, linkAt)
			var types []string
			for _, m := range msgs {
				types = append(types, m.Type)
			}
			if c.wantStatus == "" {
				if len(msgs) != 1 {
					t.Errorf("outbox = %v, want ACCOUNT_LINKED alone", types)
				}
				return
			}
			if len(msgs) != 2 || msgs[0].Type != menus.TypeAccountLinked || msgs[1].Type != menus.TypeDataStatus {
				t.Fatalf("outbox in delivery order = %v, want ACCOUNT_LINKED then DATA_STATUS", types)
			}
			var body struct{ Data map[string]any }
			json.Unmarshal(msgs[1].Body, &body)
			if body.Data["phone"] != phone || body.Data["reference"] != "ref-early" || body.Data["data_status"] != "AVAILABLE" {
				t.Errorf("DATA_STATUS = %v", body.Data)
			}
		})
	}
}

func TestAnUpdateAfterTheLinkReachesItsInvitation(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x23))
	defer db.Close()
	const phone, account = "+2348031000021", "acc-late"
	inv := &menus.Invite{ID: "lnk_late", Kind: menus.InviteLink, Phone: phone, Reference: "ref-late",
		Status: menus.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
	if err := db.CreateInvite(ctx, inv, 4, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(ctx, linkedChange(account, phone, "s-late", inv, t0.Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	accountUpdated(t, db, "evt_late", account, "PARTIAL", t0.Add(2*time.Minute))
	got, _ := db.Invite(ctx, inv.ID)
	if got.Link == nil || got.Link.DataStatus != "PARTIAL" {
		t.Errorf("invitation's link = %+v, want data status PARTIAL", got.Link)
	}
}

func TestAReauthorisationKeepsTheStatusMonoGaveTheLink(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x24), store.WithStatusEvents(statusEvent))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const phone, account = "+2348031000022", "acc-reauth"
	l := fullLink(account, phone, "s-first")
	if err := db.Commit(ctx, menus.Change{Session: &menus.Session{ID: "s-first", Phone: phone, Updated: t0, Expires: t0.Add(time.Minute)}, Link: l}); err != nil {
		t.Fatal(err)
	}
	stale := *l // the reauthorising hop's copy, read before the update
	accountUpdated(t, db, "evt_reauth", account, "PROCESSING", t0.Add(time.Minute))
	stale.Reauthorised = t0.Add(2 * time.Minute)
	if err := db.Commit(ctx, menus.Change{Session: &menus.Session{ID: "s-reauth", Phone: phone, Updated: t0, Expires: t0.Add(time.Minute)}, Link: &stale}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := db.Link(ctx, account)
	if got.DataStatus != "PROCESSING" {
		t.Errorf("data status after the reauthorisation = %q, want PROCESSING", got.DataStatus)
	}
	if msgs := outboxTypes(t, db, t0); len(msgs) != 0 {
		t.Errorf("a link written again announced its status again: %d messages", len(msgs))
	}
}

func TestRememberedUpdatesAreSwept(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x25))
	defer db.Close()
	accountUpdated(t, db, "evt_1", "acc-old", "AVAILABLE", t0)
	accountUpdated(t, db, "evt_2", "acc-new", "AVAILABLE", t0.Add(2*time.Minute+store.MonoUpdateTTL))
	accountUpdated(t, db, "evt_3", "acc-old", "PARTIAL", t0.Add(time.Minute)) // replaces the first
	n, err := db.SweepMonoUpdates(ctx, t0.Add(time.Minute+store.MonoUpdateTTL), 100)
	if err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
	if _, ok, _ := db.LatestUpdate(ctx, "acc-old"); ok {
		t.Errorf("an update older than the retention is still kept")
	}
	if u, ok, _ := db.LatestUpdate(ctx, "acc-new"); !ok || u.DataStatus != "AVAILABLE" {
		t.Errorf("a recent update was swept")
	}
}
