package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// linkedChange is the commit of a hop of session that linked account from
// phone under inv, at at.
func linkedChange(account, phone, session string, inv *link.Invite, at time.Time) link.Change {
	l := newLink(account, phone, session)
	l.Reference, l.Linked = inv.Reference, at
	settled := *inv
	settled.Status, settled.Link, settled.AccountID, settled.Session, settled.Updated = link.StatusLinked, l, account, session, at
	return link.Change{
		Session: &link.SessionRecord{ID: session, Phone: phone, Updated: at, Purge: at.Add(time.Minute),
			Data: state{State: "linked", Invite: inv.ID, Expires: at.Add(time.Minute)}.encode()},
		Link:   l,
		Invite: &settled,
		Events: []link.Event{event("msg_linked_"+session, link.TypeAccountLinked, account, session, at)},
	}
}

// applyOnce is a MonoEvent apply that records what it was handed.
type applyOnce struct {
	linked *link.Link
	reauth *link.Invite
	calls  int
}

func monoBehaviours() []behaviour {
	const phone = "+2348031000020"
	return []behaviour{
		each("a Mono event is applied once, and its retry changes nothing", func(t *testing.T, b Backend) {
			ctx := t.Context()
			l := newLink("acc-1", phone, "s1")
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Link: l})
			deliver := func(eventID, status string) bool {
				applied, err := b.Store.MonoEvent(ctx, eventID, t0.Add(time.Minute), "acc-1", func(l *link.Link, _ *link.Invite) link.MonoOutcome {
					l.DataStatus = status
					return link.MonoOutcome{Events: []link.Event{event("msg_"+eventID+"_"+status, link.TypeDataStatus, "acc-1", "", t0)}}
				})
				if err != nil {
					t.Fatalf("MonoEvent(%s): %v", eventID, err)
				}
				return applied
			}
			if !deliver("evt_1", "AVAILABLE") {
				t.Fatal("the first delivery of evt_1 was not applied")
			}
			if deliver("evt_1", "FAILED") {
				t.Error("a retry of evt_1 was applied again")
			}
			if got, _, _ := b.Store.Link(ctx, "acc-1"); got.DataStatus != "AVAILABLE" {
				t.Errorf("data status after the retry = %q, want the first delivery's AVAILABLE", got.DataStatus)
			}
			if !deliver("evt_2", "PARTIAL") {
				t.Error("another event was not applied")
			}
			if got, want := ids(drain(t, b.Webhooks)), []string{"msg_evt_1_AVAILABLE", "msg_evt_2_PARTIAL"}; !slices.Equal(got, want) {
				t.Errorf("webhooks = %v, want %v", got, want)
			}
		}),
		each("apply is handed the account's link and latest reauthorisation invitation, or nothing", func(t *testing.T, b Backend) {
			ctx := t.Context()
			l := newLink("acc-1", phone, "s1")
			l.Reference = "loan-1"
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Link: l})
			reauth := newInvite("rea_1", phone, "loan-1", 24*time.Hour)
			reauth.AccountID = "acc-1"
			mustCreate(t, b.Store, reauth, 4)
			for _, c := range []struct {
				account    string
				wantLink   *link.Link
				wantReauth *link.Invite
			}{
				{"acc-1", l, reauth},
				{"acc-none", nil, nil},
			} {
				var got applyOnce
				_, err := b.Store.MonoEvent(ctx, "evt_"+c.account, t0.Add(time.Minute), c.account, func(l *link.Link, r *link.Invite) link.MonoOutcome {
					got.linked, got.reauth, got.calls = l, r, got.calls+1
					return link.MonoOutcome{}
				})
				if err != nil {
					t.Fatal(err)
				}
				if got.calls == 0 || !same(got.linked, c.wantLink) || !same(got.reauth, c.wantReauth) {
					t.Errorf("apply for %s was handed %s, %s; want %s, %s", c.account, show(got.linked), show(got.reauth), show(c.wantLink), show(c.wantReauth))
				}
			}
		}),
		each("what apply changes is written back, and the link's status reaches the invitations carrying it", func(t *testing.T, b Backend) {
			ctx := t.Context()
			inv := newInvite("lnk_1", phone, "loan-1", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			mustCommit(t, b.Store, linkedChange("acc-1", phone, "s1", inv, t0.Add(time.Minute)))
			drain(t, b.Webhooks)
			reauth := newInvite("rea_1", phone, "loan-1", 24*time.Hour)
			reauth.AccountID = "acc-1"
			mustCreate(t, b.Store, reauth, 4)
			at := t0.Add(time.Hour)
			applied, err := b.Store.MonoEvent(ctx, "evt_1", at, "acc-1", func(l *link.Link, r *link.Invite) link.MonoOutcome {
				l.DataStatus, l.ReauthRequired = "PARTIAL", true
				r.Status, r.Updated = link.StatusReauthorised, at
				return link.MonoOutcome{Events: []link.Event{event("msg_reauth", link.TypeReauthorisationNeeded, "acc-1", "", at)}}
			})
			if err != nil || !applied {
				t.Fatalf("MonoEvent = %v, %v", applied, err)
			}
			if got, _, _ := b.Store.Link(ctx, "acc-1"); got.DataStatus != "PARTIAL" || !got.ReauthRequired {
				t.Errorf("link = %s; want PARTIAL, reauthorisation required", show(got))
			}
			if got := mustInvite(t, b.Store, "rea_1"); got.Status != link.StatusReauthorised || !got.Updated.Equal(at) {
				t.Errorf("reauthorisation = %s; want it reauthorised at %v", show(got), at)
			}
			if got := mustInvite(t, b.Store, "lnk_1"); got.Link == nil || got.Link.DataStatus != "PARTIAL" {
				t.Errorf("the invitation's link = %s; want data status PARTIAL", show(got.Link))
			}
			if got, want := ids(drain(t, b.Webhooks)), []string{"msg_reauth"}; !slices.Equal(got, want) {
				t.Errorf("webhooks = %v, want %v", got, want)
			}
		}),
		each("an unlinking apply sets reaches the link, the invitations carrying it and its reauthorisation", func(t *testing.T, b Backend) {
			ctx := t.Context()
			inv := newInvite("lnk_1", phone, "loan-1", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			mustCommit(t, b.Store, linkedChange("acc-1", phone, "s1", inv, t0.Add(time.Minute)))
			other := newInvite("lnk_2", phone, "loan-1", 24*time.Hour) // the same reference, another account's link
			mustCreate(t, b.Store, other, 4)
			mustCommit(t, b.Store, linkedChange("acc-2", phone, "s2", other, t0.Add(2*time.Minute)))
			reauth := newInvite("rea_1", phone, "loan-1", 24*time.Hour)
			reauth.AccountID = "acc-1"
			mustCreate(t, b.Store, reauth, 4)
			drain(t, b.Webhooks)
			// Mono completes the reauthorisation: it carries the link.
			applied, err := b.Store.MonoEvent(ctx, "evt_reauthorised", t0.Add(time.Hour), "acc-1", func(l *link.Link, r *link.Invite) link.MonoOutcome {
				cp := *l
				r.Status, r.Updated, r.Link = link.StatusReauthorised, t0.Add(time.Hour), &cp
				return link.MonoOutcome{}
			})
			if err != nil || !applied {
				t.Fatalf("MonoEvent(reauthorised) = %v, %v", applied, err)
			}
			// Only the link is changed: the store carries it to the rest.
			at := t0.Add(2 * time.Hour)
			applied, err = b.Store.MonoEvent(ctx, "evt_unlinked", at, "acc-1", func(l *link.Link, _ *link.Invite) link.MonoOutcome {
				l.Unlinked, l.DataStatus = at, "AVAILABLE"
				return link.MonoOutcome{Events: []link.Event{event("msg_unlinked", link.TypeAccountUnlinked, "acc-1", "", at)}}
			})
			if err != nil || !applied {
				t.Fatalf("MonoEvent(unlinked) = %v, %v", applied, err)
			}
			if got, _, _ := b.Store.Link(ctx, "acc-1"); !got.Unlinked.Equal(at) || got.DataStatus != "AVAILABLE" {
				t.Errorf("link = %s; want it unlinked at %v, data status AVAILABLE", show(got), at)
			}
			if got, _ := b.Store.LinksByPhone(ctx, phone); len(got) != 2 || !got[0].Unlinked.Equal(at) || !got[1].Unlinked.IsZero() {
				t.Errorf("links of the phone = %s; want acc-1 unlinked at %v, acc-2 not", show(got), at)
			}
			for _, c := range []struct {
				id   string
				want time.Time
			}{
				{"lnk_1", at},          // carries the link
				{"rea_1", at},          // carries it since the reauthorisation
				{"lnk_2", time.Time{}}, // carries another account's
			} {
				got := mustInvite(t, b.Store, c.id)
				if got.Link == nil || !got.Link.Unlinked.Equal(c.want) {
					t.Errorf("%s's link = %s; want unlinked %v", c.id, show(got.Link), c.want)
				}
			}
			if got := mustInvite(t, b.Store, "lnk_1"); got.Link.DataStatus != "AVAILABLE" {
				t.Errorf("lnk_1's link = %s; want data status AVAILABLE", show(got.Link))
			}
			if got, want := ids(drain(t, b.Webhooks)), []string{"msg_unlinked"}; !slices.Equal(got, want) {
				t.Errorf("webhooks = %v, want %v", got, want)
			}
		}),
		{name: "a link committed again keeps an unlinking only when it carries one", run: func(t *testing.T, open opener) {
			for _, c := range []struct {
				name     string
				unlinked time.Time // the committed link's
			}{
				{"a new link of an unlinked account is not unlinked", time.Time{}},
				{"a link committed with an unlinking keeps it", t0.Add(3 * time.Hour)},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Link: newLink("acc-1", phone, "s1")})
					at := t0.Add(time.Hour)
					if _, err := b.Store.MonoEvent(ctx, "evt_unlinked", at, "acc-1", func(l *link.Link, _ *link.Invite) link.MonoOutcome {
						l.Unlinked = at
						return link.MonoOutcome{}
					}); err != nil {
						t.Fatal(err)
					}
					again := newLink("acc-1", phone, "s2")
					again.Linked, again.Unlinked = t0.Add(2*time.Hour), c.unlinked
					mustCommit(t, b.Store, link.Change{Session: record("s2", phone, state{}), Link: again})
					if got, _, _ := b.Store.Link(ctx, "acc-1"); got.SessionID != "s2" || !got.Unlinked.Equal(c.unlinked) {
						t.Errorf("link = %s; want s2's, unlinked %v", show(got), c.unlinked)
					}
				})
			}
		}},
		{name: "an event whose outcome cannot be written changes nothing, and is applied when it comes again", run: func(t *testing.T, open opener) {
			for _, c := range []struct {
				name string
				bad  func(out *link.MonoOutcome)
			}{
				{"a new nudge without code digits", func(out *link.MonoOutcome) {
					out.Nudge = newInvite("rea_new", phone, "", 24*time.Hour)
					out.Nudge.AccountID = "acc-1"
					out.NudgeText = func(inv *link.Invite) link.Text { return text("sms_nudge", phone, t0) }
				}},
				{"an event that cannot be encoded", func(out *link.MonoOutcome) {
					out.Events = append(out.Events, link.Event{ID: "msg_bad", Type: link.TypeError, Timestamp: t0, Data: map[string]any{"f": func() {}}})
				}},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					l := newLink("acc-1", phone, "s1")
					mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Link: l})
					apply := func(bad bool) func(*link.Link, *link.Invite) link.MonoOutcome {
						return func(l *link.Link, _ *link.Invite) link.MonoOutcome {
							l.DataStatus = "AVAILABLE"
							out := link.MonoOutcome{Events: []link.Event{event("msg_status", link.TypeDataStatus, "acc-1", "", t0)},
								Update: &link.MonoUpdate{AccountID: "acc-1", DataStatus: "AVAILABLE", Received: t0}}
							if bad {
								c.bad(&out)
							}
							return out
						}
					}
					if applied, err := b.Store.MonoEvent(ctx, "evt_1", t0, "acc-1", apply(true)); err == nil || applied {
						t.Fatalf("MonoEvent = %v, %v; want an error", applied, err)
					}
					if got, _, _ := b.Store.Link(ctx, "acc-1"); got.DataStatus != "" {
						t.Errorf("link after a failed event = %s; want it unchanged", show(got))
					}
					if _, ok, _ := b.Store.LatestUpdate(ctx, "acc-1"); ok {
						t.Error("a failed event's update was remembered")
					}
					if invs, _ := b.Store.InvitesByPhone(ctx, phone); len(invs) != 0 {
						t.Errorf("a failed event stored invitations %v", inviteIDs(invs))
					}
					if msgs := due(t, b.Webhooks, far); len(msgs) != 0 {
						t.Errorf("a failed event queued webhooks %v", ids(msgs))
					}
					if msgs := due(t, b.Texts, far); len(msgs) != 0 {
						t.Errorf("a failed event queued texts %v", ids(msgs))
					}
					if applied, err := b.Store.MonoEvent(ctx, "evt_1", t0, "acc-1", apply(false)); err != nil || !applied {
						t.Errorf("the event delivered again = %v, %v; want it applied", applied, err)
					}
				})
			}
		}},
		{name: "a nudge carries the stored reauthorisation when it is the one chosen, else a new one with a fresh code", run: func(t *testing.T, open opener) {
			for _, c := range []struct {
				name    string
				nudge   func(stored *link.Invite) *link.Invite
				wantNew bool
			}{
				{"the stored invitation is reused as apply left it", func(stored *link.Invite) *link.Invite {
					stored.Expires = t0.Add(48 * time.Hour) // extended for the nudge
					return stored
				}, false},
				{"a new one is stored with a code of the digits asked, though the stored one is pending", func(*link.Invite) *link.Invite {
					inv := newInvite("rea_new", phone, "", 24*time.Hour)
					inv.AccountID, inv.Created = "acc-1", t0.Add(time.Minute)
					return inv
				}, true},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					stored := newInvite("rea_old", phone, "", 24*time.Hour)
					stored.AccountID = "acc-1"
					mustCreate(t, b.Store, stored, 4)
					var carried *link.Invite
					applied, err := b.Store.MonoEvent(ctx, "evt_nudge", t0.Add(time.Minute), "acc-1", func(_ *link.Link, reauth *link.Invite) link.MonoOutcome {
						return link.MonoOutcome{Nudge: c.nudge(reauth), CodeDigits: 6, NudgeText: func(inv *link.Invite) link.Text {
							cp := *inv
							carried = &cp
							tx := text("sms_nudge", phone, t0)
							tx.Kind, tx.Data = link.TextReauthNudge, map[string]string{"code": inv.Code}
							return tx
						}}
					})
					if err != nil || !applied {
						t.Fatalf("MonoEvent = %v, %v", applied, err)
					}
					if carried == nil {
						t.Fatal("the nudge's text was never built")
					}
					texts := due(t, b.Texts, far)
					if len(texts) != 1 || texts[0].ID != "sms_nudge" || !containsAny(texts[0].Body, carried.Code) {
						t.Fatalf("texts = %v; want the nudge carrying code %s", ids(texts), carried.Code)
					}
					invs, _ := b.Store.InvitesByPhone(ctx, phone)
					latest, err := b.Store.ReauthOf(ctx, "acc-1")
					if err != nil {
						t.Fatal(err)
					}
					if !c.wantNew {
						if carried.ID != "rea_old" || carried.Code != stored.Code || len(invs) != 1 {
							t.Errorf("nudge carried %s, code %s, with %d invitations; want rea_old and its code %s alone", carried.ID, carried.Code, len(invs), stored.Code)
						}
						if got := mustInvite(t, b.Store, "rea_old"); !got.Expires.Equal(t0.Add(48 * time.Hour)) {
							t.Errorf("the reused invitation expires %v, want it written back as apply left it", got.Expires)
						}
						return
					}
					if carried.ID != "rea_new" || len(carried.Code) != 6 || !isCode(carried.Code, 6) || len(invs) != 2 {
						t.Errorf("nudge carried %s, code %q, with %d invitations; want rea_new with a 6-digit code, stored beside rea_old", carried.ID, carried.Code, len(invs))
					}
					if latest.ID != "rea_new" || latest.Code != carried.Code {
						t.Errorf("the account's reauthorisation = %s; want rea_new, with the code the text carries", show(latest))
					}
					if got, err := b.Store.InviteByCode(ctx, carried.Code); err != nil || got.ID != "rea_new" {
						t.Errorf("InviteByCode(%s) = %s, %v; want rea_new", carried.Code, show(got), err)
					}
				})
			}
		}},
		each("an update is remembered as the account's latest, and SweepMonoUpdates forgets those received before its cut-off", func(t *testing.T, b Backend) {
			ctx := t.Context()
			update := func(eventID, account, status string, at time.Time) link.MonoUpdate {
				u := link.MonoUpdate{AccountID: account, DataStatus: status, EventAt: at.Add(-time.Second), Received: at}
				_, err := b.Store.MonoEvent(ctx, eventID, at, account, func(*link.Link, *link.Invite) link.MonoOutcome {
					return link.MonoOutcome{Update: &u}
				})
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
			update("evt_1", "acc-old", "AVAILABLE", t0)
			latest := update("evt_2", "acc-old", "PARTIAL", t0.Add(time.Minute)) // replaces the first
			for i := range 3 {
				update(fmt.Sprintf("evt_other_%d", i), fmt.Sprintf("acc-other-%d", i), "AVAILABLE", t0.Add(time.Duration(i)*time.Second))
			}
			young := update("evt_3", "acc-new", "AVAILABLE", t0.Add(2*time.Minute+monoUpdateTTL))
			if got, ok, err := b.Store.LatestUpdate(ctx, "acc-old"); err != nil || !ok || !same(got, &latest) {
				t.Errorf("LatestUpdate(acc-old) = %s, %v, %v; want %s", show(got), ok, err, show(latest))
			}
			if got, ok, err := b.Store.LatestUpdate(ctx, "acc-none"); err != nil || ok || got != nil {
				t.Errorf("LatestUpdate(unknown) = %s, %v, %v; want none", show(got), ok, err)
			}
			cut := t0.Add(time.Minute + monoUpdateTTL)
			if n, err := b.Store.SweepMonoUpdates(ctx, cut, 2); err != nil || n != 2 {
				t.Fatalf("SweepMonoUpdates(max 2) = %d, %v; want 2", n, err)
			}
			if n, err := b.Store.SweepMonoUpdates(ctx, cut, 100); err != nil || n != 2 {
				t.Fatalf("SweepMonoUpdates again = %d, %v; want the other 2 received before the cut-off", n, err)
			}
			for _, account := range []string{"acc-old", "acc-other-0", "acc-other-1", "acc-other-2"} {
				if _, ok, _ := b.Store.LatestUpdate(ctx, account); ok {
					t.Errorf("the update of %s, older than the cut-off, is still kept", account)
				}
			}
			if got, ok, _ := b.Store.LatestUpdate(ctx, "acc-new"); !ok || !same(got, &young) {
				t.Errorf("a recent update was swept: %s, %v", show(got), ok)
			}
		}),
		{name: "a new link takes a remembered update when the policy says so, announced after the link", run: func(t *testing.T, open opener) {
			for _, c := range []struct {
				name       string
				received   time.Duration // before the link's Linked time
				status     string        // the update's
				wantStatus string
			}{
				{"an update received while the link was being made", 30 * time.Second, "AVAILABLE", "AVAILABLE"},
				{"an update the policy takes, long before the link was made", 20 * time.Minute, "AVAILABLE", "AVAILABLE"},
				{"an update received at the start of the policy's window", PolicyWindow, "AVAILABLE", "AVAILABLE"},
				{"an update received after the link was made, before it committed", -time.Minute, "AVAILABLE", "AVAILABLE"},
				{"an update the policy declines", PolicyWindow + time.Microsecond, "AVAILABLE", ""},
				{"an update without a data status, not offered", 30 * time.Second, "", ""},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					inv := newInvite("lnk_early", phone, "ref-early", time.Hour)
					mustCreate(t, b.Store, inv, 4)
					linkAt := t0.Add(20 * time.Minute)
					remember(t, b.Store, "evt_early", "acc-early", c.status, linkAt.Add(-c.received))
					change := linkedChange("acc-early", phone, "s-early", inv, linkAt)
					// Told of after the link was made, about its session: the
					// status still comes after them.
					change.Events = append(change.Events, event("msg_told_s-early", link.TypeExit, "", "s-early", linkAt.Add(time.Second)))
					change.InviteEvents = []link.Event{event("msg_invite_s-early", link.TypeAccountSelected, "", "s-early-invite", linkAt.Add(2*time.Second))}
					mustCommit(t, b.Store, change)

					l, _, _ := b.Store.Link(ctx, "acc-early")
					got := mustInvite(t, b.Store, inv.ID)
					if l.DataStatus != c.wantStatus || got.Link == nil || got.Link.DataStatus != c.wantStatus {
						t.Errorf("data status of the link, of its invitation = %q, %s; want %q", l.DataStatus, show(got.Link), c.wantStatus)
					}
					msgs := drain(t, b.Webhooks)
					want := []string{"msg_linked_s-early", "msg_told_s-early", "msg_invite_s-early"}
					if c.wantStatus != "" {
						want = append(want, "msg_status_s-early")
					}
					if !slices.Equal(ids(msgs), want) {
						t.Fatalf("webhooks in delivery order = %v, want %v", ids(msgs), want)
					}
					if c.wantStatus == "" {
						return
					}
					var body webhookBody
					if err := json.Unmarshal(msgs[3].Body, &body); err != nil {
						t.Fatal(err)
					}
					if body.Type != link.TypeDataStatus || body.Data["phone"] != phone || body.Data["reference"] != "ref-early" || body.Data["data_status"] != "AVAILABLE" {
						t.Errorf("the announcement = %s, want LinkUpdates' DATA_STATUS about the link", msgs[3].Body)
					}
				})
			}
		}},
		each("a link written again keeps the status Mono gave it, unannounced", func(t *testing.T, b Backend) {
			ctx := t.Context()
			l := newLink("acc-reauth", phone, "s-first")
			mustCommit(t, b.Store, link.Change{Session: record("s-first", phone, state{}), Link: l})
			stale := *l // the reauthorising hop's copy, read before the update
			remember(t, b.Store, "evt_reauth", "acc-reauth", "PROCESSING", t0.Add(time.Minute))
			stale.Reauthorised = t0.Add(2 * time.Minute)
			mustCommit(t, b.Store, link.Change{Session: record("s-reauth", phone, state{}), Link: &stale})
			got, _, _ := b.Store.Link(ctx, "acc-reauth")
			if got.DataStatus != "PROCESSING" || !got.Reauthorised.Equal(stale.Reauthorised) {
				t.Errorf("link after the reauthorisation = %s; want it reauthorised, data status PROCESSING kept", show(got))
			}
			if msgs := due(t, b.Webhooks, far); len(msgs) != 0 {
				t.Errorf("a link written again announced its status again: %v", ids(msgs))
			}
		}),
		each("SweepMonoEvents forgets the event ids seen before its cut-off, at most max, so they apply again", func(t *testing.T, b Backend) {
			ctx := t.Context()
			seen := map[string]time.Time{"evt_0": t0, "evt_1": t0.Add(time.Minute), "evt_2": t0.Add(2 * time.Minute), "evt_cut": t0.Add(time.Hour)}
			apply := func(*link.Link, *link.Invite) link.MonoOutcome { return link.MonoOutcome{} }
			for id, at := range seen {
				if applied, err := b.Store.MonoEvent(ctx, id, at, "acc-1", apply); err != nil || !applied {
					t.Fatalf("MonoEvent(%s) = %v, %v", id, applied, err)
				}
			}
			cut := t0.Add(time.Hour)
			if n, err := b.Store.SweepMonoEvents(ctx, cut, 2); err != nil || n != 2 {
				t.Fatalf("SweepMonoEvents(max 2) = %d, %v; want 2", n, err)
			}
			if n, err := b.Store.SweepMonoEvents(ctx, cut, 100); err != nil || n != 1 {
				t.Fatalf("SweepMonoEvents again = %d, %v; want 1", n, err)
			}
			for id, at := range seen {
				applied, err := b.Store.MonoEvent(ctx, id, cut, "acc-1", apply)
				if err != nil || applied != at.Before(cut) {
					t.Errorf("MonoEvent(%s) after the sweep = %v, %v; want applied %v", id, applied, err, at.Before(cut))
				}
			}
		}),
	}
}
