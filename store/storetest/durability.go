package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// reopen closes b's store and opens its data again, or skips the test
// when the backend cannot.
func reopen(t *testing.T, b Backend) Backend {
	t.Helper()
	if b.Reopen == nil {
		t.Skip("the backend cannot be reopened (Backend.Reopen)")
	}
	again := b.Reopen(t)
	if again.Store == nil || again.Webhooks == nil || again.Texts == nil {
		t.Fatalf("the backend reopened has no store or queue: %+v", again)
	}
	return again
}

func durabilityBehaviours() []behaviour {
	return []behaviour{
		each("everything written survives a reopen", func(t *testing.T, b Backend) {
			if b.Reopen == nil {
				t.Skip("the backend cannot be reopened (Backend.Reopen)")
			}
			ctx := t.Context()
			const phone = "+2348030000001"
			rec := fullRecord("ATUid_reopen", phone)
			l := newLink("acc-1", phone, rec.ID)
			mustCommit(t, b.Store, link.Change{Session: rec, Link: l, LoginFailure: true,
				Events: []link.Event{event("msg_1", link.TypeAccountLinked, "acc-1", rec.ID, t0), event("msg_dead", link.TypeOpened, "", "s-other", t0)},
				Texts:  []link.Text{text("sms_1", phone, t0)}})
			if err := b.Webhooks.Reschedule(ctx, "msg_1", 2, t0.Add(time.Minute), "HTTP 503"); err != nil {
				t.Fatal(err)
			}
			if err := b.Webhooks.GiveUp(ctx, "msg_dead", "refused"); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := b.Store.ReserveAttempt(ctx, phone, t0.Add(-lockout), t0, 3); err != nil || !ok {
				t.Fatalf("ReserveAttempt = %v, %v", ok, err)
			}
			inv := newInvite("lnk_1", phone, "loan-1", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			claimed, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Code: inv.Code, Phone: phone, Session: rec.ID, Now: t0.Add(time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			answer := link.Answer{Status: 201, Body: []byte(`{"id":"lnk_1"}`), Created: t0}
			if err := b.Store.SaveAnswer(ctx, "pk key-1", answer); err != nil {
				t.Fatal(err)
			}
			conv := link.Conversation{Session: "sms-1", Seq: 3, Expires: t0.Add(time.Hour)}
			if err := b.Store.SetConversation(ctx, phone, conv); err != nil {
				t.Fatal(err)
			}
			if err := b.Store.OptOut(ctx, phone, true, t0); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Store.FirstDelivery(ctx, "termii", "msg-in-1", t0); err != nil {
				t.Fatal(err)
			}
			remember(t, b.Store, "evt_1", "acc-2", "AVAILABLE", t0)

			b = reopen(t, b)
			if diff := sameRecord(mustSession(t, b.Store, rec.ID), rec); diff != "" {
				t.Errorf("Session after reopening: %s", diff)
			}
			if got, err := b.Store.Latest(ctx, phone); err != nil || got.ID != rec.ID {
				t.Errorf("Latest after reopening = %s, %v", show(got), err)
			}
			if got, ok, err := b.Store.Link(ctx, "acc-1"); err != nil || !ok || !same(got, l) {
				t.Errorf("Link after reopening = %s, %v, %v; want %s", show(got), ok, err, show(l))
			}
			if links, err := b.Store.LinksByPhone(ctx, phone); err != nil || !same(links, []link.Link{*l}) {
				t.Errorf("LinksByPhone after reopening = %s, %v", show(links), err)
			}
			if got := failures(t, b.Store, phone, t0.Add(-lockout)); got != 2 {
				t.Errorf("LoginFailures after reopening = %d, want the failure and the reservation", got)
			}
			if got := mustInvite(t, b.Store, inv.ID); !same(got, claimed) {
				t.Errorf("Invite after reopening = %s, want %s", show(got), show(claimed))
			}
			if got, err := b.Store.InviteByCode(ctx, inv.Code); err != nil || got.ID != inv.ID {
				t.Errorf("InviteByCode after reopening = %s, %v", show(got), err)
			}
			if got, ok, err := b.Store.Idempotent(ctx, "pk key-1"); err != nil || !ok || !same(got, &answer) {
				t.Errorf("Idempotent after reopening = %s, %v, %v", show(got), ok, err)
			}
			if got, ok, err := b.Store.Conversation(ctx, phone); err != nil || !ok || !same(got, conv) {
				t.Errorf("Conversation after reopening = %+v, %v, %v", got, ok, err)
			}
			if out, err := b.Store.OptedOut(ctx, phone); err != nil || !out {
				t.Errorf("OptedOut after reopening = %v, %v", out, err)
			}
			if first, err := b.Store.FirstDelivery(ctx, "termii", "msg-in-1", t0.Add(time.Minute)); err != nil || first {
				t.Errorf("FirstDelivery of an id seen before reopening = %v, %v; want false", first, err)
			}
			if applied, err := b.Store.MonoEvent(ctx, "evt_1", t0.Add(time.Minute), "acc-2", func(*link.Link, *link.Invite) link.MonoOutcome {
				return link.MonoOutcome{}
			}); err != nil || applied {
				t.Errorf("MonoEvent applied before reopening = %v, %v; want it not applied again", applied, err)
			}
			if u, ok, err := b.Store.LatestUpdate(ctx, "acc-2"); err != nil || !ok || u.DataStatus != "AVAILABLE" {
				t.Errorf("LatestUpdate after reopening = %s, %v, %v", show(u), ok, err)
			}
			if msgs := due(t, b.Webhooks, far); len(msgs) != 1 || msgs[0].ID != "msg_1" || msgs[0].Attempts != 2 || !msgs[0].Next.Equal(t0.Add(time.Minute)) {
				t.Errorf("webhooks after reopening = %s; want msg_1, attempted twice, due at t0+1m", show(msgs))
			}
			if dead, err := b.Webhooks.DeadLetters(ctx); err != nil || len(dead) != 1 || dead[0].ID != "msg_dead" {
				t.Errorf("dead letters after reopening = %v, %v", ids(dead), err)
			}
			if got := dueIDs(t, b.Texts, far); !slices.Equal(got, []string{"sms_1"}) {
				t.Errorf("texts after reopening = %v, want sms_1", got)
			}
		}),
		forEachQueue("the queue order survives a reopen", func(t *testing.T, b Backend, k queueKind, q Queue) {
			if b.Reopen == nil {
				t.Skip("the backend cannot be reopened (Backend.Reopen)")
			}
			k.put(t, b, t0, queued{id: "m_z", about: "0001"})
			b = reopen(t, b)
			q = k.queue(b)
			k.put(t, b, t0, queued{id: "m_y", about: "0002"}, queued{id: "m_x", about: "0001"})
			if got, want := dueIDs(t, q, t0), []string{"m_z", "m_y"}; !slices.Equal(got, want) {
				t.Errorf("Due = %v, want %v", got, want)
			}
			if err := q.Delivered(t.Context(), "m_z"); err != nil {
				t.Fatal(err)
			}
			if got, want := dueIDs(t, q, t0), []string{"m_y", "m_x"}; !slices.Equal(got, want) {
				t.Errorf("once the first is delivered, Due = %v, want %v", got, want)
			}
		}),
	}
}
