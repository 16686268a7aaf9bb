package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// isCode reports whether code is a code of at least digits decimal digits,
// the first not 0 (a leading 0 may be lost on the way from a handset).
func isCode(code string, digits int) bool {
	if len(code) < digits || code[0] == '0' {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func inviteBehaviours() []behaviour {
	return []behaviour{
		each("a created invitation gets a code of its digits and reads back as created, by id and by code", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for digits := 1; digits <= 8; digits++ {
				inv := newInvite(fmt.Sprintf("lnk_%d", digits), "+2348030000001", "loan-1", 24*time.Hour)
				inv.Institution, inv.AuthMethod = "inst-5f5b530a", "internet_banking"
				mustCreate(t, b.Store, inv, digits)
				if len(inv.Code) != digits || !isCode(inv.Code, digits) {
					t.Errorf("CreateInvite(%d digits) gave code %q; want %d decimal digits, the first not 0", digits, inv.Code, digits)
				}
				if got := mustInvite(t, b.Store, inv.ID); !same(got, inv) {
					t.Errorf("Invite(%s) = %s, want %s", inv.ID, show(got), show(inv))
				}
				if got, err := b.Store.InviteByCode(ctx, inv.Code); err != nil || !same(got, inv) {
					t.Errorf("InviteByCode(%s) = %s, %v; want %s", inv.Code, show(got), err, show(inv))
				}
			}
			if got, err := b.Store.Invite(ctx, "lnk_unknown"); !errors.Is(err, link.ErrNoInvite) || got != nil {
				t.Errorf("Invite(unknown) = %s, %v; want nil, ErrNoInvite", show(got), err)
			}
			if got, err := b.Store.InviteByCode(ctx, "999999999"); !errors.Is(err, link.ErrNoInvite) || got != nil {
				t.Errorf("InviteByCode(unknown) = %s, %v; want nil, ErrNoInvite", show(got), err)
			}
		}),
		each("an invitation's customer and language read back as written, and none stays none", func(t *testing.T, b Backend) {
			named := newInvite("lnk_customer", "+2348030000001", "loan-c", 24*time.Hour)
			named.Customer = &link.Customer{Name: "Ada Okafor", Email: "ada@example.com"}
			named.Language = "yo"
			plain := newInvite("lnk_nocustomer", "+2348030000001", "loan-d", 24*time.Hour)
			mustCreate(t, b.Store, named, 6)
			mustCreate(t, b.Store, plain, 6)
			if got := mustInvite(t, b.Store, named.ID); got.Customer == nil || *got.Customer != *named.Customer || got.Language != "yo" {
				t.Errorf("Invite(%s) customer %+v, language %q; want %+v, yo", named.ID, got.Customer, got.Language, named.Customer)
			}
			if got := mustInvite(t, b.Store, plain.ID); got.Customer != nil {
				t.Errorf("Invite(%s).Customer = %+v, want none", plain.ID, got.Customer)
			}
		}),
		each("codes are unique among pending invitations, and a crowded space grows a digit", func(t *testing.T, b Backend) {
			codes := map[string]string{}
			longer := 0
			for i := range 12 { // only nine codes have one digit
				inv := newInvite(fmt.Sprintf("lnk_%02d", i), "+2348030000001", "", 24*time.Hour)
				mustCreate(t, b.Store, inv, 1)
				if !isCode(inv.Code, 1) {
					t.Errorf("code %q: want decimal digits, the first not 0", inv.Code)
				}
				if other, dup := codes[inv.Code]; dup {
					t.Errorf("%s and %s, both pending, hold code %s", other, inv.ID, inv.Code)
				}
				codes[inv.Code] = inv.ID
				if len(inv.Code) > 1 {
					longer++
				}
			}
			if longer < 3 {
				t.Errorf("%d of 12 one-digit codes are longer; want at least 3", longer)
			}
		}),
		each("the code of an expired or finished invitation is free again", func(t *testing.T, b Backend) {
			ctx := t.Context()
			// Fill the one-digit codes with invitations that expire in a minute.
			held := map[string]string{}
			for i := 0; len(held) < 9; i++ {
				if i == 500 {
					t.Fatalf("500 invitations hold only the one-digit codes %v", held)
				}
				inv := newInvite(fmt.Sprintf("lnk_fill_%03d", i), "+2348030000001", "", time.Minute)
				mustCreate(t, b.Store, inv, 1)
				if len(inv.Code) == 1 {
					held[inv.Code] = inv.ID
				}
			}
			crowded := newInvite("lnk_crowded", "+2348030000002", "", time.Minute)
			mustCreate(t, b.Store, crowded, 1)
			if len(crowded.Code) == 1 {
				t.Fatalf("with every one-digit code pending, a new invitation got %q", crowded.Code)
			}
			// Past their expiry every one-digit code is free.
			later := newInvite("lnk_later", "+2348030000003", "", time.Hour)
			later.Created = t0.Add(2 * time.Minute)
			if err := b.Store.CreateInvite(ctx, later, 1, later.Created); err != nil {
				t.Fatal(err)
			}
			if len(later.Code) != 1 {
				t.Fatalf("with every one-digit code expired, a new invitation got %q", later.Code)
			}
			if got, err := b.Store.InviteByCode(ctx, later.Code); err != nil || got.ID != later.ID {
				t.Errorf("InviteByCode(%s) = %s, %v; want the new holder %s", later.Code, show(got), err, later.ID)
			}
			// A finished invitation gives its code up at once.
			done := *mustInvite(t, b.Store, later.ID)
			done.Status, done.Updated = link.StatusLinked, t0.Add(3*time.Minute)
			mustCommit(t, b.Store, link.Change{Session: record("s1", later.Phone, state{}), Invite: &done})
			if got, err := b.Store.InviteByCode(ctx, later.Code); !errors.Is(err, link.ErrNoInvite) {
				t.Errorf("InviteByCode(%s) of a linked invitation = %s, %v; want ErrNoInvite", later.Code, show(got), err)
			}
			again := newInvite("lnk_again", "+2348030000004", "", time.Hour)
			again.Created = t0.Add(4 * time.Minute)
			if err := b.Store.CreateInvite(ctx, again, 1, again.Created); err != nil {
				t.Fatal(err)
			}
			if len(again.Code) != 1 {
				t.Errorf("with every one-digit code expired or finished, a new invitation got %q", again.Code)
			}
		}),
		each("a phone's invitations are listed oldest first, a reference's in id order", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			for _, c := range []struct {
				id, phone, ref string
				created        time.Duration
			}{
				{"lnk_c", phone, "loan-1", 0},
				{"lnk_a", phone, "loan-2", time.Second},
				{"lnk_b", phone, "loan-1", 2 * time.Second},
				{"lnk_0", phone + "1", "loan-1", 3 * time.Second}, // a phone the first is a prefix of
				{"lnk_d", phone + "1", "loan-10", 4 * time.Second},
			} {
				inv := newInvite(c.id, c.phone, c.ref, 24*time.Hour)
				inv.Created = t0.Add(c.created)
				mustCreate(t, b.Store, inv, 4)
			}
			for _, p := range []string{phone, phone[1:]} {
				got, err := b.Store.InvitesByPhone(ctx, p)
				if want := []string{"lnk_c", "lnk_a", "lnk_b"}; err != nil || !slices.Equal(inviteIDs(got), want) {
					t.Errorf("InvitesByPhone(%s) = %v, %v; want %v", p, inviteIDs(got), err, want)
				}
			}
			got, err := b.Store.InvitesByReference(ctx, "loan-1")
			if want := []string{"lnk_0", "lnk_b", "lnk_c"}; err != nil || !slices.Equal(inviteIDs(got), want) {
				t.Errorf("InvitesByReference(loan-1) = %v, %v; want %v", inviteIDs(got), err, want)
			}
			if len(got) == 3 && !same(&got[2], mustInvite(t, b.Store, "lnk_c")) {
				t.Errorf("InvitesByReference gave %s, not the invitation as stored", show(got[2]))
			}
			if got, err := b.Store.InvitesByPhone(ctx, "+2340000000000"); err != nil || len(got) != 0 {
				t.Errorf("InvitesByPhone(none) = %v, %v; want none", inviteIDs(got), err)
			}
			if got, err := b.Store.InvitesByReference(ctx, "loan-9"); err != nil || len(got) != 0 {
				t.Errorf("InvitesByReference(none) = %v, %v; want none", inviteIDs(got), err)
			}
		}),
		each("PendingInvite is the phone's newest invitation usable now", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			for _, c := range []struct {
				id      string
				created time.Duration
				ttl     time.Duration
			}{
				{"lnk_older", 0, 24 * time.Hour},
				{"lnk_newer", time.Second, 24 * time.Hour},
				{"lnk_expired", 2 * time.Second, time.Minute},
				{"lnk_linked", 3 * time.Second, 24 * time.Hour},
			} {
				inv := newInvite(c.id, phone, "", c.ttl)
				inv.Created, inv.Expires = t0.Add(c.created), t0.Add(c.created+c.ttl)
				mustCreate(t, b.Store, inv, 4)
			}
			done := *mustInvite(t, b.Store, "lnk_linked")
			done.Status = link.StatusLinked
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Invite: &done})
			now := t0.Add(2 * time.Minute)
			for _, p := range []string{phone, phone[1:]} {
				if got, err := b.Store.PendingInvite(ctx, p, now); err != nil || got.ID != "lnk_newer" {
					t.Errorf("PendingInvite(%s) = %s, %v; want lnk_newer", p, show(got), err)
				}
			}
			if got, err := b.Store.PendingInvite(ctx, phone, t0.Add(25*time.Hour)); !errors.Is(err, link.ErrNoInvite) {
				t.Errorf("PendingInvite once all expired = %s, %v; want ErrNoInvite", show(got), err)
			}
			if got, err := b.Store.PendingInvite(ctx, "+2348030000002", now); !errors.Is(err, link.ErrNoInvite) {
				t.Errorf("PendingInvite(another phone) = %s, %v; want ErrNoInvite", show(got), err)
			}
		}),
		each("ReauthOf is the account's latest reauthorisation invitation", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for i, id := range []string{"rea_1", "rea_2"} {
				inv := newInvite(id, "+2348030000001", "", 24*time.Hour)
				inv.AccountID, inv.Created = "acc-x", t0.Add(time.Duration(i)*time.Second)
				mustCreate(t, b.Store, inv, 4)
			}
			notReauth := newInvite("lnk_1", "+2348030000001", "", 24*time.Hour)
			notReauth.AccountID, notReauth.Created = "acc-x", t0.Add(time.Minute)
			mustCreate(t, b.Store, notReauth, 4)
			if got, err := b.Store.ReauthOf(ctx, "acc-x"); err != nil || !same(got, mustInvite(t, b.Store, "rea_2")) {
				t.Errorf("ReauthOf(acc-x) = %s, %v; want rea_2", show(got), err)
			}
			if got, err := b.Store.ReauthOf(ctx, "acc-none"); !errors.Is(err, link.ErrNoInvite) || got != nil {
				t.Errorf("ReauthOf(unknown) = %s, %v; want nil, ErrNoInvite", show(got), err)
			}
		}),
		{name: "a commit moves an invitation on only from pending, and its events with it", run: func(t *testing.T, open opener) {
			const phone = "+2348030000001"
			for _, c := range []struct {
				name     string
				id       string
				finish   func(t *testing.T, b Backend) // completes the invitation first, if set
				wantKept string                        // the status that stays; "" when the commit's is written
			}{
				{"a pending invitation is moved on", "lnk_1", nil, ""},
				{"one a commit finished first stays as it is", "lnk_1", func(t *testing.T, b Backend) {
					first := *mustInvite(t, b.Store, "lnk_1")
					first.Status, first.Session = link.StatusLinked, "s0"
					mustCommit(t, b.Store, link.Change{Session: record("s0", phone, state{}), Invite: &first})
				}, link.StatusLinked},
				{"one Mono's webhook finished first stays as it is", "rea_1", func(t *testing.T, b Backend) {
					applied, err := b.Store.MonoEvent(t.Context(), "evt_1", t0.Add(time.Minute), "acc-rea_1",
						func(_ *link.Link, reauth *link.Invite) link.MonoOutcome {
							reauth.Status, reauth.Updated = link.StatusReauthorised, t0.Add(time.Minute)
							return link.MonoOutcome{}
						})
					if err != nil || !applied {
						t.Fatalf("MonoEvent = %v, %v", applied, err)
					}
				}, link.StatusReauthorised},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					inv := newInvite(c.id, phone, "loan-1", 24*time.Hour)
					mustCreate(t, b.Store, inv, 4)
					if c.finish != nil {
						c.finish(t, b)
						drainAll(t, b.Webhooks)
					}
					moved := *inv
					moved.Status, moved.Session, moved.Updated = link.StatusFailed, "s1", t0.Add(2*time.Minute)
					mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Invite: &moved,
						Events:       []link.Event{event("msg_own", link.TypeExit, "", "s1", t0)},
						InviteEvents: []link.Event{event("msg_invite", link.TypeError, "", "s1", t0)}})

					got := mustInvite(t, b.Store, c.id)
					wantIDs := []string{"msg_own"}
					if c.wantKept == "" {
						if !same(got, &moved) {
							t.Errorf("Invite = %s, want %s", show(got), show(&moved))
						}
						wantIDs = append(wantIDs, "msg_invite")
					} else if got.Status != c.wantKept {
						t.Errorf("Invite status = %s, want %s kept", got.Status, c.wantKept)
					}
					if msgs := drainAll(t, b.Webhooks); !slices.Equal(ids(msgs), wantIDs) {
						t.Errorf("webhooks queued = %v, want %v", ids(msgs), wantIDs)
					}
					if _, err := b.Store.Session(ctx, "s1"); err != nil {
						t.Errorf("the session of the commit: %v", err)
					}
					if _, err := b.Store.InviteByCode(ctx, inv.Code); !errors.Is(err, link.ErrNoInvite) {
						t.Errorf("InviteByCode of a finished invitation: %v, want ErrNoInvite", err)
					}
				})
			}
		}},
		each("a pending copy committed keeps the claim made since it was read", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			inv := newInvite("lnk_1", phone, "loan-1", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			copyRead := *mustInvite(t, b.Store, inv.ID) // a hop's copy, read before the claim
			at := t0.Add(time.Minute)
			if _, err := b.Store.ClaimInvite(t.Context(), link.InviteClaim{Code: inv.Code, Phone: phone, Session: "s1", Now: at}); err != nil {
				t.Fatal(err)
			}
			copyRead.Updated = t0.Add(2 * time.Minute)
			mustCommit(t, b.Store, link.Change{Session: record("s2", phone, state{}), Invite: &copyRead})
			got := mustInvite(t, b.Store, inv.ID)
			if got.Session != "s1" || !got.Claimed.Equal(at) || !got.Updated.Equal(copyRead.Updated) {
				t.Errorf("Invite = %s; want the copy written with the claim of s1 at %v kept", show(got), at)
			}
		}),
	}
}

// holdsFor is a claim policy like the conversation's: a holder not stored
// (or stored before its claim) holds the invitation for a minute from the
// claim; a stored one while it follows the invitation, has not ended and
// has not expired. It must never be shown the holder's secrets.
func holdsFor(t *testing.T, now time.Time) func(*link.Invite, *link.SessionRecord) bool {
	return func(inv *link.Invite, holder *link.SessionRecord) bool {
		if holder == nil || holder.Updated.Before(inv.Claimed) {
			return now.Before(inv.Claimed.Add(time.Minute))
		}
		if len(holder.Secrets) != 0 {
			t.Errorf("the claim policy was shown the holder's secrets")
		}
		if holder.ID != inv.Session {
			t.Errorf("the claim policy was shown %s as the holder of a claim by %s", holder.ID, inv.Session)
		}
		s := stateOf(t, holder)
		return s.Invite == inv.ID && s.State != "ended" && now.Before(s.Expires.Add(time.Minute))
	}
}

func claimBehaviours() []behaviour {
	const phone = "+2348031000007"
	return []behaviour{
		each("of two sessions claiming one code, the second is told it is in use while Holds says it is held", func(t *testing.T, b Backend) {
			ctx := t.Context()
			inv := newInvite("lnk_claim", phone, "ref-claim", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			at := t0.Add(time.Minute)
			got, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Code: inv.Code, Phone: phone, Session: "s1", Now: at})
			if err != nil || got.ID != inv.ID || got.Session != "s1" || !got.Claimed.Equal(at) {
				t.Fatalf("first claim = %s, %v; want %s claimed by s1 at %v", show(got), err, inv.ID, at)
			}
			if stored := mustInvite(t, b.Store, inv.ID); stored.Session != "s1" || !stored.Claimed.Equal(at) {
				t.Errorf("stored after the claim: %s; want the claim of s1", show(stored))
			}
			var asked []string
			policy := func(held bool) func(*link.Invite, *link.SessionRecord) bool {
				return func(inv *link.Invite, holder *link.SessionRecord) bool {
					asked = append(asked, inv.Session)
					if holder != nil {
						t.Errorf("Holds shown a holder %s that is not stored", holder.ID)
					}
					return held
				}
			}
			second := link.InviteClaim{Code: inv.Code, Phone: phone, Session: "s2", Now: at.Add(time.Second), Holds: policy(true)}
			if got, err := b.Store.ClaimInvite(ctx, second); !errors.Is(err, link.ErrInviteInUse) || got != nil {
				t.Errorf("second claim while held = %s, %v; want ErrInviteInUse", show(got), err)
			}
			if len(asked) == 0 || slices.ContainsFunc(asked, func(s string) bool { return s != "s1" }) {
				t.Errorf("Holds was asked about the claims of %v, want s1's", asked)
			}
			second.Holds = policy(false)
			if got, err := b.Store.ClaimInvite(ctx, second); err != nil || got.Session != "s2" {
				t.Errorf("second claim once no longer held = %s, %v; want it claimed by s2", show(got), err)
			}
			if stored := mustInvite(t, b.Store, inv.ID); stored.Session != "s2" {
				t.Errorf("stored after the second claim: %s; want the claim of s2", show(stored))
			}
		}),
		each("concurrent claims of one code give it to one session", func(t *testing.T, b Backend) {
			inv := newInvite("lnk_claim", phone, "ref-claim", 24*time.Hour)
			mustCreate(t, b.Store, inv, 4)
			const n = 16
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = b.Store.ClaimInvite(t.Context(), link.InviteClaim{Code: inv.Code, Phone: phone,
						Session: fmt.Sprintf("s%02d", i), Now: t0.Add(time.Second)})
				})
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
		}),
		{name: "a claim passes on only when its holder no longer holds it", run: func(t *testing.T, open opener) {
			at := t0.Add(time.Minute)
			live := func(id string) *link.SessionRecord {
				r := record(id, phone, state{State: "credentials", Invite: "lnk_claim", Expires: at.Add(3 * time.Minute)})
				r.Updated, r.Purge = at, at.Add(13*time.Minute)
				return withSecrets(r, "typed", at.Add(2*time.Minute))
			}
			for _, c := range []struct {
				name     string
				holder   func() *link.SessionRecord // stored before the second claim; nil: not stored
				claim    link.InviteClaim
				noPolicy bool
				want     error
			}{
				{"a live session keeps it", func() *link.SessionRecord { return live("s1") },
					link.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, false, link.ErrInviteInUse},
				{"a session whose first hop is not committed yet keeps it", nil,
					link.InviteClaim{Session: "s2", Now: at.Add(time.Second)}, false, link.ErrInviteInUse},
				{"the same session claims it again", func() *link.SessionRecord { return live("s1") },
					link.InviteClaim{Session: "s1", Now: at.Add(time.Minute)}, false, nil},
				{"a session taking over the holder (From) takes it", func() *link.SessionRecord { return live("s1") },
					link.InviteClaim{Session: "s2", From: "s1", Now: at.Add(time.Minute)}, false, nil},
				{"a session that ended lets it go", func() *link.SessionRecord {
					r := live("s1")
					r.Data = state{State: "ended", Invite: "lnk_claim", Expires: at.Add(3 * time.Minute)}.encode()
					return r
				}, link.InviteClaim{Session: "s2", Now: at.Add(time.Minute)}, false, nil},
				{"an expired session lets it go", func() *link.SessionRecord { return live("s1") },
					link.InviteClaim{Session: "s2", Now: at.Add(5 * time.Minute)}, false, nil},
				{"without a policy a held invitation stays held", func() *link.SessionRecord { return live("s1") },
					link.InviteClaim{Session: "s2", Now: at.Add(5 * time.Minute)}, true, link.ErrInviteInUse},
				{"another phone never gets it", nil,
					link.InviteClaim{Session: "s2", Phone: "+2348031000009", Now: at.Add(time.Hour)}, false, link.ErrNoInvite},
				{"an expired invitation is no one's", nil,
					link.InviteClaim{Session: "s2", Now: t0.Add(25 * time.Hour)}, false, link.ErrNoInvite},
				{"an invitation of another kind is not claimed", nil,
					link.InviteClaim{Session: "s2", Kind: link.InviteReauth, Now: at.Add(time.Hour)}, false, link.ErrNoInvite},
				{"an unknown code claims nothing", nil,
					link.InviteClaim{Session: "s2", Code: "99999999", Now: at.Add(time.Hour)}, false, link.ErrNoInvite},
				{"a claim by id is a claim", nil,
					link.InviteClaim{Session: "s2", ID: "lnk_claim", Now: at.Add(time.Hour)}, false, nil},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					inv := newInvite("lnk_claim", phone, "ref-claim", 24*time.Hour)
					mustCreate(t, b.Store, inv, 4)
					if _, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Code: inv.Code, Phone: phone, Session: "s1", Now: at}); err != nil {
						t.Fatalf("first claim: %v", err)
					}
					if c.holder != nil {
						mustCommit(t, b.Store, link.Change{Session: c.holder()})
					}
					claim := c.claim
					if claim.Code == "" && claim.ID == "" {
						claim.Code = inv.Code
					}
					if claim.Phone == "" {
						claim.Phone = phone
					}
					if !c.noPolicy {
						claim.Holds = holdsFor(t, claim.Now)
					}
					got, err := b.Store.ClaimInvite(ctx, claim)
					if !errors.Is(err, c.want) {
						t.Fatalf("second claim: %s, %v; want %v", show(got), err, c.want)
					}
					if err == nil && (got.ID != inv.ID || got.Session != claim.Session || !got.Claimed.Equal(claim.Now) || got.Reference != "ref-claim") {
						t.Errorf("claimed invitation = %s; want %s claimed by %s at %v", show(got), inv.ID, claim.Session, claim.Now)
					}
				})
			}
		}},
		each("a plain dial claims the phone's newest free invitation first", func(t *testing.T, b Backend) {
			ctx := t.Context()
			older, newer := newInvite("lnk_older", phone, "", 24*time.Hour), newInvite("lnk_newer", phone, "", 24*time.Hour)
			newer.Created = t0.Add(time.Second)
			other := newInvite("rea_other", phone, "", 24*time.Hour)
			other.Created = t0.Add(2 * time.Second)
			for _, inv := range []*link.Invite{older, newer, other} {
				mustCreate(t, b.Store, inv, 4)
			}
			at := t0.Add(time.Minute)
			for _, want := range []string{"lnk_newer", "lnk_older"} {
				got, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Phone: phone[1:], Session: "for-" + want, Kind: link.InviteLink, Now: at})
				if err != nil || got.ID != want {
					t.Fatalf("claim = %s, %v; want %s", show(got), err, want)
				}
			}
			if got, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Phone: phone, Session: "third", Kind: link.InviteLink, Now: at}); !errors.Is(err, link.ErrInviteInUse) {
				t.Errorf("third claim = %s, %v; want ErrInviteInUse", show(got), err)
			}
			if got, err := b.Store.ClaimInvite(ctx, link.InviteClaim{Phone: "+2348031000008", Session: "stranger", Now: at}); !errors.Is(err, link.ErrNoInvite) {
				t.Errorf("a claim by a phone with no invitation = %s, %v; want ErrNoInvite", show(got), err)
			}
		}),
	}
}
