package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// statusEvent is a DATA_STATUS as the partner package builds it.
func statusEvent(l *link.Link, u link.MonoUpdate) link.Event {
	return link.Event{ID: "msg_status_" + l.SessionID, Type: link.TypeDataStatus, Timestamp: l.Linked,
		Data: map[string]any{"account_id": l.AccountID, "phone": l.Phone, "reference": l.Reference, "data_status": u.DataStatus}}
}

// testWindow is the window of linkUpdates, the tests' policy.
const testWindow = 15 * time.Minute

// linkUpdates is a policy as the partner package's: a new link takes an
// update received at most testWindow before it was made, announced by a
// DATA_STATUS. It names the event even when it declines, so a test sees
// the store queue none for an update not taken.
func linkUpdates(l *link.Link, u link.MonoUpdate) (bool, []link.Event) {
	return !u.Received.Before(l.Linked.Add(-testWindow)), []link.Event{statusEvent(l, u)}
}

// accountUpdated applies an account_updated as the webhook receiver does:
// remembered, and set on the link when there is one.
func accountUpdated(t *testing.T, db *store.DB, eventID, account, status string, at time.Time) {
	t.Helper()
	_, err := db.MonoEvent(context.Background(), eventID, at, account, func(l *link.Link, _ *link.Invite) link.MonoOutcome {
		if l != nil {
			l.DataStatus = status
		}
		return link.MonoOutcome{Update: &link.MonoUpdate{AccountID: account, DataStatus: status, Received: at}}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// linkedChange is the commit of a hop that linked account from phone under
// an invitation.
func linkedChange(account, phone, session string, inv *link.Invite, at time.Time) link.Change {
	l := fullLink(account, phone, session)
	l.Reference, l.Linked = inv.Reference, at
	settled := *inv
	settled.Status, settled.Link, settled.AccountID, settled.Session = link.StatusLinked, l, account, session
	return link.Change{
		Session: &link.SessionRecord{ID: session, Phone: phone, Updated: at, Purge: at.Add(time.Minute),
			Data: conversation{State: "linked", Link: l, Invite: inv.ID, Expires: at.Add(time.Minute)}.encode()},
		Link:   l,
		Invite: &settled,
		Events: []link.Event{{ID: "msg_linked_" + session, Type: link.TypeAccountLinked, Timestamp: at,
			Data: map[string]any{"account_id": account, "phone": phone}}},
	}
}

// outboxTypes drains the outbox as the deliverer does, one message at a
// time, and returns the messages in the order they left.
func outboxTypes(t *testing.T, db *store.DB, now time.Time) []link.Message {
	t.Helper()
	ctx := context.Background()
	var out []link.Message
	for range 100 {
		msgs, err := db.Webhooks().Due(ctx, now.Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			return out
		}
		out = append(out, msgs[0])
		if err := db.Webhooks().Delivered(ctx, msgs[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the outbox does not drain")
	return nil
}

func TestAnUpdateBeforeTheLinkIsAppliedWhenTheLinkCommits(t *testing.T) {
	cases := []struct {
		name       string
		opts       []store.Option
		received   time.Duration // before the link commits
		wantStatus string
	}{
		{"an update received while the link was being made", []store.Option{store.WithLinkUpdates(linkUpdates)}, 30 * time.Second, "AVAILABLE"},
		{"an update from before the flow could have begun", []store.Option{store.WithLinkUpdates(linkUpdates)}, testWindow + time.Second, ""},
		{"no policy: no update is applied", nil, 30 * time.Second, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x22), c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			const phone, account = "+2348031000020", "acc-early"
			inv := &link.Invite{ID: "lnk_early", Kind: link.InviteLink, Phone: phone, Reference: "ref-early",
				Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
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
			if len(msgs) != 2 || msgs[0].Type != link.TypeAccountLinked || msgs[1].Type != link.TypeDataStatus {
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
	inv := &link.Invite{ID: "lnk_late", Kind: link.InviteLink, Phone: phone, Reference: "ref-late",
		Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
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
	always := func(l *link.Link, u link.MonoUpdate) (bool, []link.Event) { // would announce it, were it asked
		return true, []link.Event{statusEvent(l, u)}
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x24), store.WithLinkUpdates(always))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const phone, account = "+2348031000022", "acc-reauth"
	l := fullLink(account, phone, "s-first")
	if err := db.Commit(ctx, link.Change{Session: record("s-first", phone, conversation{}), Link: l}); err != nil {
		t.Fatal(err)
	}
	stale := *l // the reauthorising hop's copy, read before the update
	accountUpdated(t, db, "evt_reauth", account, "PROCESSING", t0.Add(time.Minute))
	stale.Reauthorised = t0.Add(2 * time.Minute)
	if err := db.Commit(ctx, link.Change{Session: record("s-reauth", phone, conversation{}), Link: &stale}); err != nil {
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

func TestANudgeCarriesTheInvitationTheHandlerChose(t *testing.T) {
	const phone, account = "+2348031000023", "acc-nudge"
	fresh := func() *link.Invite {
		return &link.Invite{ID: "rea_new", Kind: link.InviteReauth, Phone: phone, AccountID: account,
			Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
	}
	cases := []struct {
		name    string
		nudge   func(stored *link.Invite) *link.Invite // what the handler decides
		digits  int
		wantErr bool
		wantNew bool // a new invitation is stored; else the stored one is carried
	}{
		{"the stored invitation is reused as it is", func(stored *link.Invite) *link.Invite { return stored }, 6, false, false},
		{"a new one is stored with a code of the digits asked, though the stored one is pending",
			func(*link.Invite) *link.Invite { return fresh() }, 6, false, true},
		{"a new one without code digits is refused", func(*link.Invite) *link.Invite { return fresh() }, 0, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, filepath.Join(t.TempDir(), "ussdlink.db"), newSealer(t, 0x26))
			defer db.Close()
			stored := &link.Invite{ID: "rea_old", Kind: link.InviteReauth, Phone: phone, AccountID: account,
				Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(time.Hour)}
			if err := db.CreateInvite(ctx, stored, 4, t0); err != nil {
				t.Fatal(err)
			}
			var carried string
			applied, err := db.MonoEvent(ctx, "evt_nudge", t0.Add(time.Minute), account, func(_ *link.Link, reauth *link.Invite) link.MonoOutcome {
				return link.MonoOutcome{Nudge: c.nudge(reauth), CodeDigits: c.digits, NudgeText: func(inv *link.Invite) link.Text {
					carried = inv.Code
					return link.Text{ID: "sms_nudge", Kind: link.TextReauthNudge, To: phone, Data: map[string]string{"code": inv.Code}, Created: t0}
				}}
			})
			if (err != nil) != c.wantErr || applied == c.wantErr {
				t.Fatalf("MonoEvent = %v, %v; want an error %v", applied, err, c.wantErr)
			}
			texts, _ := db.Texts().Due(ctx, t0.Add(time.Hour), 10)
			invites, _ := db.InvitesByPhone(ctx, phone)
			if c.wantErr {
				if len(texts) != 0 || len(invites) != 1 {
					t.Errorf("a refused nudge left %d texts, %d invitations; want none, the stored one", len(texts), len(invites))
				}
				return
			}
			if len(texts) != 1 {
				t.Fatalf("texts queued = %d, want the nudge", len(texts))
			}
			if !c.wantNew {
				if len(invites) != 1 || carried != stored.Code {
					t.Errorf("invitations = %d, code carried %q; want the stored one and its code %q", len(invites), carried, stored.Code)
				}
				return
			}
			if len(invites) != 2 || len(carried) != c.digits {
				t.Errorf("invitations = %d, code %q; want a new one with a %d-digit code", len(invites), carried, c.digits)
			}
			if latest, err := db.ReauthOf(ctx, account); err != nil || latest.ID != "rea_new" || latest.Code != carried {
				t.Errorf("the account's reauth = %+v, %v; want the new one, with the code the text carries", latest, err)
			}
		})
	}
}
