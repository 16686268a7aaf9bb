package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func textingBehaviours() []behaviour {
	return []behaviour{
		each("a phone that texted STOP is opted out until it texts START, with or without its +", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			opted := func(p string) bool {
				t.Helper()
				out, err := b.Store.OptedOut(ctx, p)
				if err != nil {
					t.Fatalf("OptedOut(%s): %v", p, err)
				}
				return out
			}
			if opted(phone) {
				t.Error("a phone that never texted STOP is opted out")
			}
			if err := b.Store.OptOut(ctx, phone[1:], true, t0); err != nil {
				t.Fatal(err)
			}
			if !opted(phone) || !opted(phone[1:]) {
				t.Error("a phone that texted STOP is not opted out")
			}
			if opted(phone + "1") {
				t.Error("a longer phone is opted out with the one it starts with")
			}
			if err := b.Store.OptOut(ctx, phone, false, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if opted(phone) || opted(phone[1:]) {
				t.Error("a phone that texted START is still opted out")
			}
		}),
		each("a phone's conversation reads back as last set, until it ends", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			read := func(p string) (link.Conversation, bool) {
				t.Helper()
				c, ok, err := b.Store.Conversation(ctx, p)
				if err != nil {
					t.Fatalf("Conversation(%s): %v", p, err)
				}
				return c, ok
			}
			if c, ok := read(phone); ok {
				t.Errorf("Conversation of a phone that never texted = %+v", c)
			}
			first := link.Conversation{Session: "sms-1", Seq: 1, Expires: t0.Add(10 * time.Minute)}
			next := link.Conversation{Session: "sms-1", Seq: 2, Expires: t0.Add(20 * time.Minute)}
			for _, c := range []link.Conversation{first, next} {
				if err := b.Store.SetConversation(ctx, phone[1:], c); err != nil {
					t.Fatal(err)
				}
				for _, p := range []string{phone, phone[1:]} {
					if got, ok := read(p); !ok || !same(got, c) {
						t.Errorf("Conversation(%s) = %+v, %v; want %+v", p, got, ok, c)
					}
				}
			}
			if err := b.Store.SetConversation(ctx, phone, link.Conversation{}); err != nil {
				t.Fatal(err)
			}
			if c, ok := read(phone); ok {
				t.Errorf("Conversation after it ended = %+v, want none", c)
			}
		}),
		each("SweepConversations deletes those that expired before now, not one that went on, at most max", func(t *testing.T, b Backend) {
			ctx := t.Context()
			set := func(phone string, c link.Conversation) {
				t.Helper()
				if err := b.Store.SetConversation(ctx, phone, c); err != nil {
					t.Fatal(err)
				}
			}
			set("+2348030000001", link.Conversation{Session: "a", Seq: 1, Expires: t0.Add(10 * time.Minute)})
			set("+2348030000002", link.Conversation{Session: "b", Seq: 1, Expires: t0.Add(time.Hour)})
			set("+2348030000003", link.Conversation{Session: "c", Seq: 1, Expires: t0.Add(time.Minute)})
			set("+2348030000001", link.Conversation{Session: "a", Seq: 2, Expires: t0.Add(2 * time.Hour)}) // a texted again
			set("+2348030000003", link.Conversation{})                                                     // c ended
			for i := range 3 {
				set(fmt.Sprintf("+23480300001%02d", i), link.Conversation{Session: fmt.Sprintf("d%d", i), Seq: 1, Expires: t0.Add(time.Duration(i) * time.Second)})
			}
			if n, err := b.Store.SweepConversations(ctx, t0.Add(30*time.Minute), 2); err != nil || n != 2 {
				t.Errorf("SweepConversations(t0+30m, max 2) = %d, %v; want 2", n, err)
			}
			if n, err := b.Store.SweepConversations(ctx, t0.Add(30*time.Minute), 100); err != nil || n != 1 {
				t.Errorf("SweepConversations(t0+30m) again = %d, %v; want the last of d0-d2 (a went on, c ended)", n, err)
			}
			if n, err := b.Store.SweepConversations(ctx, t0.Add(time.Hour), 100); err != nil || n != 0 {
				t.Errorf("SweepConversations(t0+1h) = %d, %v; want none: expiring exactly now is not expired", n, err)
			}
			if n, err := b.Store.SweepConversations(ctx, t0.Add(90*time.Minute), 100); err != nil || n != 1 {
				t.Errorf("SweepConversations(t0+90m) = %d, %v; want b", n, err)
			}
			for phone, want := range map[string]bool{"+2348030000001": true, "+2348030000002": false, "+2348030000003": false, "+2348030000100": false} {
				if _, ok, err := b.Store.Conversation(ctx, phone); err != nil || ok != want {
					t.Errorf("conversation of %s kept = %v, %v; want %v", phone, ok, err, want)
				}
			}
		}),
		each("an inbound message is taken once for each provider, and again once forgotten", func(t *testing.T, b Backend) {
			ctx := t.Context()
			first := func(provider, id string, at time.Time) bool {
				t.Helper()
				ok, err := b.Store.FirstDelivery(ctx, provider, id, at)
				if err != nil {
					t.Fatalf("FirstDelivery(%s, %s): %v", provider, id, err)
				}
				return ok
			}
			for _, step := range []struct {
				provider, id string
				want         bool
			}{
				{"termii", "msg-1", true},
				{"termii", "msg-1", false}, // the provider's retry
				{"twilio", "msg-1", true},  // another provider's id
				{"termii", "msg-2", true},
			} {
				if got := first(step.provider, step.id, t0); got != step.want {
					t.Errorf("FirstDelivery(%s, %s) = %v, want %v", step.provider, step.id, got, step.want)
				}
			}
			if err := b.Store.ForgetDelivery(ctx, "termii", "msg-1"); err != nil {
				t.Fatal(err)
			}
			if !first("termii", "msg-1", t0.Add(time.Minute)) {
				t.Error("a forgotten message was not taken again")
			}
			if first("twilio", "msg-1", t0.Add(time.Minute)) {
				t.Error("forgetting one provider's id forgot another's")
			}
			if err := b.Store.ForgetDelivery(ctx, "termii", "msg-unknown"); err != nil {
				t.Errorf("ForgetDelivery(unknown) = %v, want no error", err)
			}
		}),
		each("SweepInbound forgets the ids seen before its cut-off, at most max, so they are taken again", func(t *testing.T, b Backend) {
			ctx := t.Context()
			seen := map[string]time.Time{"msg-0": t0, "msg-1": t0.Add(time.Minute), "msg-2": t0.Add(2 * time.Minute), "msg-cut": t0.Add(time.Hour)}
			for id, at := range seen {
				if ok, err := b.Store.FirstDelivery(ctx, "termii", id, at); err != nil || !ok {
					t.Fatalf("FirstDelivery(%s) = %v, %v", id, ok, err)
				}
			}
			cut := t0.Add(time.Hour)
			if n, err := b.Store.SweepInbound(ctx, cut, 2); err != nil || n != 2 {
				t.Fatalf("SweepInbound(max 2) = %d, %v; want 2", n, err)
			}
			if n, err := b.Store.SweepInbound(ctx, cut, 100); err != nil || n != 1 {
				t.Fatalf("SweepInbound again = %d, %v; want 1", n, err)
			}
			for id, at := range seen {
				ok, err := b.Store.FirstDelivery(ctx, "termii", id, cut)
				if err != nil || ok != at.Before(cut) {
					t.Errorf("FirstDelivery(%s) after the sweep = %v, %v; want %v", id, ok, err, at.Before(cut))
				}
			}
		}),
		each("an id forgotten and taken again is kept from when it was taken again", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for _, at := range []time.Time{t0, t0.Add(2 * time.Hour)} {
				if ok, err := b.Store.FirstDelivery(ctx, "termii", "msg-1", at); err != nil || !ok {
					t.Fatalf("FirstDelivery at t0%+v = %v, %v; want it taken", at.Sub(t0), ok, err)
				}
				if at.Equal(t0) {
					if err := b.Store.ForgetDelivery(ctx, "termii", "msg-1"); err != nil { // its processing failed
						t.Fatal(err)
					}
				}
			}
			if _, err := b.Store.SweepInbound(ctx, t0.Add(time.Hour), 100); err != nil {
				t.Fatal(err)
			}
			if ok, err := b.Store.FirstDelivery(ctx, "termii", "msg-1", t0.Add(3*time.Hour)); err != nil || ok {
				t.Errorf("a retry of the id taken again at t0+2h, after sweeping what was seen before t0+1h = %v, %v; want it refused as seen", ok, err)
			}
		}),
	}
}
