package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// findable reports, of an invitation as first stored, every way the
// contract finds it that still does.
func findable(t *testing.T, s Store, inv *link.Invite) []string {
	t.Helper()
	ctx := t.Context()
	var ways []string
	if _, err := s.Invite(ctx, inv.ID); err == nil {
		ways = append(ways, "Invite")
	}
	if got, err := s.InviteByCode(ctx, inv.Code); err == nil && got.ID == inv.ID {
		ways = append(ways, "InviteByCode")
	}
	if got, _ := s.InvitesByPhone(ctx, inv.Phone); slices.Contains(inviteIDs(got), inv.ID) {
		ways = append(ways, "InvitesByPhone")
	}
	if inv.Reference != "" {
		if got, _ := s.InvitesByReference(ctx, inv.Reference); slices.Contains(inviteIDs(got), inv.ID) {
			ways = append(ways, "InvitesByReference")
		}
	}
	if inv.AccountID != "" {
		if got, err := s.ReauthOf(ctx, inv.AccountID); err == nil && got.ID == inv.ID {
			ways = append(ways, "ReauthOf")
		}
	}
	return ways
}

func retentionBehaviours() []behaviour {
	return []behaviour{
		each("SweepInvites deletes hand-overs once expired and the partner's after their retention, with every way to find them", func(t *testing.T, b Backend) {
			ctx := t.Context()
			invs := []*link.Invite{
				newInvite("hnd_1", "+2348030000001", "", 10*time.Minute),
				newInvite("hnd_2", "+2348030000001", "loan-1", 10*time.Minute),
				newInvite("lnk_1", "+2348030000002", "loan-2", 24*time.Hour),
				newInvite("rea_1", "+2348030000003", "loan-3", 24*time.Hour),
			}
			for _, inv := range invs {
				mustCreate(t, b.Store, inv, 4)
			}
			for _, step := range []struct {
				name string
				now  time.Time
				kept []string
			}{
				{"while usable, everything is kept", t0.Add(5 * time.Minute), []string{"hnd_1", "hnd_2", "lnk_1", "rea_1"}},
				{"expired hand-overs go at once", t0.Add(11 * time.Minute), []string{"lnk_1", "rea_1"}},
				{"expired partner invitations stay for the retention", t0.Add(24*time.Hour + inviteRetention - time.Minute), []string{"lnk_1", "rea_1"}},
				{"then they go", t0.Add(24*time.Hour + inviteRetention + time.Minute), nil},
			} {
				if _, err := b.Store.SweepInvites(ctx, step.now, step.now.Add(-inviteRetention), 100); err != nil {
					t.Fatal(err)
				}
				for _, inv := range invs {
					ways := findable(t, b.Store, inv)
					if slices.Contains(step.kept, inv.ID) {
						if !slices.Contains(ways, "Invite") {
							t.Errorf("%s: invitation %s was deleted", step.name, inv.ID)
						}
					} else if len(ways) != 0 {
						t.Errorf("%s: invitation %s is still found by %v", step.name, inv.ID, ways)
					}
				}
			}
		}),
		each("an invitation is kept from the later of its expiry and its last change", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for _, inv := range []*link.Invite{
				newInvite("lnk_1", "+2348030000002", "loan-2", time.Hour),
				newInvite("rea_1", "+2348030000003", "loan-3", time.Hour),
			} {
				mustCreate(t, b.Store, inv, 4)
			}
			// lnk_1 is linked before it expires: kept from its expiry.
			linked := *mustInvite(t, b.Store, "lnk_1")
			linked.Status, linked.Updated = link.StatusLinked, t0.Add(30*time.Minute)
			mustCommit(t, b.Store, link.Change{Session: record("s1", linked.Phone, state{}), Invite: &linked})
			// rea_1 is changed by Mono's webhook two days after it expired:
			// kept from then.
			changed := t0.Add(48 * time.Hour)
			_, err := b.Store.MonoEvent(ctx, "evt-1", changed, "acc-rea_1", func(_ *link.Link, reauth *link.Invite) link.MonoOutcome {
				reauth.Updated = changed
				return link.MonoOutcome{}
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, step := range []struct {
				now  time.Time
				kept map[string]bool
			}{
				{t0.Add(time.Hour + inviteRetention - time.Minute), map[string]bool{"lnk_1": true, "rea_1": true}},
				{t0.Add(time.Hour + inviteRetention + time.Minute), map[string]bool{"lnk_1": false, "rea_1": true}},
				{changed.Add(inviteRetention + time.Minute), map[string]bool{"lnk_1": false, "rea_1": false}},
			} {
				if _, err := b.Store.SweepInvites(ctx, step.now, step.now.Add(-inviteRetention), 100); err != nil {
					t.Fatal(err)
				}
				for id, want := range step.kept {
					if _, err := b.Store.Invite(ctx, id); (err == nil) != want {
						t.Errorf("at t0%+v, invitation %s kept = %v, want %v", step.now.Sub(t0), id, err == nil, want)
					}
				}
			}
		}),
		each("SweepInvites deletes at most max of each kind, the longest over first", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for i := range 3 {
				for _, prefix := range []string{"hnd_", "lnk_"} {
					inv := newInvite(fmt.Sprintf("%s%d", prefix, i), "+2348030000001", "", time.Duration(i+1)*time.Minute)
					mustCreate(t, b.Store, inv, 4)
				}
			}
			now := t0.Add(time.Hour + inviteRetention)
			if n, err := b.Store.SweepInvites(ctx, now, now.Add(-inviteRetention), 2); err != nil || n != 4 {
				t.Fatalf("SweepInvites(max 2) = %d, %v; want 2 of each kind", n, err)
			}
			left, _ := b.Store.InvitesByPhone(ctx, "+2348030000001")
			if got, want := sortedIDs(left), []string{"hnd_2", "lnk_2"}; !slices.Equal(got, want) {
				t.Errorf("left %v, want %v: the last to expire of each kind", got, want)
			}
			if n, err := b.Store.SweepInvites(ctx, now, now.Add(-inviteRetention), 2); err != nil || n != 2 {
				t.Errorf("SweepInvites again = %d, %v; want the last 2", n, err)
			}
		}),
		each("storage empties once everything has passed its retention and been swept", func(t *testing.T, b Backend) {
			ctx := t.Context()
			flood(t, b)
			if total := sizeTotal(t, b.Store); total == 0 {
				t.Fatal("BucketSizes counts nothing after a flood of writes")
			}
			// An hour on, what has a longer retention is all still there.
			sweepAll(t, b, t0.Add(time.Hour))
			if _, err := b.Store.Invite(ctx, "lnk_flood_0"); err != nil {
				t.Errorf("a partner invitation was swept before its retention: %v", err)
			}
			if _, ok, _ := b.Store.Idempotent(ctx, "pk key-0"); !ok {
				t.Error("an idempotency answer was swept before its ttl")
			}
			if ok, _ := b.Store.FirstDelivery(ctx, "termii", "msg-0", t0.Add(time.Hour)); ok {
				t.Error("an inbound id was forgotten before its retention")
			}
			if applied, _ := b.Store.MonoEvent(ctx, "evt-0", t0.Add(time.Hour), "acc-none", func(*link.Link, *link.Invite) link.MonoOutcome { return link.MonoOutcome{} }); applied {
				t.Error("a Mono event id was forgotten before its retention")
			}
			if dead, _ := b.Texts.DeadLetters(ctx); len(dead) == 0 {
				t.Error("dead letters were swept before their retention")
			}
			if _, err := b.Store.Session(ctx, "junk-0"); !errors.Is(err, link.ErrNoSession) {
				t.Errorf("a session past its purge time is kept: %v", err)
			}
			sweepAll(t, b, t0.Add(24*time.Hour+inviteRetention+deadRetention+time.Hour))
			sizes, err := b.Store.BucketSizes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for name, n := range sizes {
				if n != 0 {
					left = append(left, fmt.Sprintf("%s=%d", name, n))
				}
			}
			sort.Strings(left)
			if len(left) != 0 {
				t.Errorf("after sweeping past every retention, storage still holds %v", left)
			}
		}),
	}
}

// sizeTotal sums BucketSizes.
func sizeTotal(t *testing.T, s Store) int {
	t.Helper()
	sizes, err := s.BucketSizes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	return total
}

// flood writes, at t0, what outside callers can cause without linking an
// account: everything of it has a retention.
func flood(t *testing.T, b Backend) {
	t.Helper()
	ctx := t.Context()
	phone := func(i int) string { return fmt.Sprintf("+23480%08d", i) }
	for i := range 40 { // dials that go nowhere, some typing a password that is refused
		r := record(fmt.Sprintf("junk-%d", i), phone(i), state{State: "banks", Expires: t0.Add(3 * time.Minute)})
		r.Purge = t0.Add(13 * time.Minute)
		if i%3 == 0 {
			withSecrets(r, "guess", t0.Add(2*time.Minute))
		}
		mustCommit(t, b.Store, link.Change{Session: r, LoginFailure: i%5 == 0,
			Events: []link.Event{event(fmt.Sprintf("msg_junk_%d", i), link.TypeOpened, "", r.ID, t0)}})
		if i%4 == 0 { // written again, its times moved
			r.Purge, r.Updated = t0.Add(14*time.Minute), t0.Add(time.Minute)
			mustCommit(t, b.Store, link.Change{Session: r})
		}
		if i%7 == 0 {
			if _, _, err := b.Store.ReserveAttempt(ctx, phone(i), t0.Add(-lockout), t0, 3); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 15 { // texts that open a conversation and leave it
		if _, err := b.Store.FirstDelivery(ctx, "termii", fmt.Sprintf("msg-%d", i), t0); err != nil {
			t.Fatal(err)
		}
		c := link.Conversation{Session: fmt.Sprintf("sms-%d", i), Seq: 1, Expires: t0.Add(10 * time.Minute)}
		if err := b.Store.SetConversation(ctx, phone(1000+i), c); err != nil {
			t.Fatal(err)
		}
		c.Seq, c.Expires = 2, t0.Add(20*time.Minute)
		if err := b.Store.SetConversation(ctx, phone(1000+i), c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 { // hand-overs never dialled; partner invitations, half with a key
		mustCreate(t, b.Store, newInvite(fmt.Sprintf("hnd_flood_%d", i), phone(2000+i), "", 10*time.Minute), 4)
		inv := newInvite(fmt.Sprintf("lnk_flood_%d", i), phone(3000+i), fmt.Sprintf("ref-%d", i), 24*time.Hour)
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("pk key-%d", i)
		}
		err := b.Store.CreateInviteAnswered(ctx, inv, 4, t0, func(inv *link.Invite) []link.Text {
			return []link.Text{text("sms_invite_"+inv.ID, inv.Phone, t0)}
		}, key, func(*link.Invite) (link.Answer, error) {
			return link.Answer{Status: 201, Body: []byte("{}"), Created: t0}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if key != "" { // the key used again
			if err := b.Store.SaveAnswer(ctx, key, link.Answer{Status: 201, Body: []byte("{}"), Created: t0.Add(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 10 { // Mono's webhooks about accounts not linked here
		account := fmt.Sprintf("acc-%d", i%3)
		_, err := b.Store.MonoEvent(ctx, fmt.Sprintf("evt-%d", i), t0, account, func(*link.Link, *link.Invite) link.MonoOutcome {
			return link.MonoOutcome{Update: &link.MonoUpdate{AccountID: account, DataStatus: "AVAILABLE", Received: t0.Add(time.Duration(i) * time.Second)}}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// What the queues could not deliver is given up; the rest is delivered.
	for n := 0; ; {
		msgs := due(t, b.Webhooks, far)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			finish := b.Webhooks.Delivered
			if n%5 == 0 {
				finish = func(ctx context.Context, id string) error { return b.Webhooks.GiveUp(ctx, id, "refused") }
			}
			if err := finish(ctx, m.ID); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	for _, m := range due(t, b.Texts, far) {
		if err := b.Texts.GiveUp(ctx, m.ID, "unreachable"); err != nil {
			t.Fatal(err)
		}
	}
}
