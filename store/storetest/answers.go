package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func answerBehaviours() []behaviour {
	return []behaviour{
		each("an answer reads back under its key, and a later one replaces it", func(t *testing.T, b Backend) {
			ctx := t.Context()
			first := link.Answer{Status: 201, Body: []byte(`{"id":"lnk_1"}`), Created: t0, RequestHash: []byte{1, 2, 3}}
			if err := b.Store.SaveAnswer(ctx, "pk /v1/links key-1", first); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := b.Store.Idempotent(ctx, "pk /v1/links key-1"); err != nil || !ok || !same(got, &first) {
				t.Errorf("Idempotent = %s, %v, %v; want %s", show(got), ok, err, show(first))
			}
			second := link.Answer{Status: 409, Body: []byte(`{"error":"conflict"}`), Created: t0.Add(25 * time.Hour)}
			if err := b.Store.SaveAnswer(ctx, "pk /v1/links key-1", second); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := b.Store.Idempotent(ctx, "pk /v1/links key-1"); err != nil || !ok || !same(got, &second) {
				t.Errorf("Idempotent after a second save = %s, %v, %v; want %s", show(got), ok, err, show(second))
			}
			if got, ok, err := b.Store.Idempotent(ctx, "pk /v1/links key-2"); err != nil || ok || got != nil {
				t.Errorf("Idempotent(unknown) = %s, %v, %v; want nil, false, nil", show(got), ok, err)
			}
		}),
		{name: "CreateInviteAnswered stores the invitation, its texts and its answer together, or none of them", run: func(t *testing.T, open opener) {
			refused := errors.New("the answer cannot be built")
			for _, c := range []struct {
				name      string
				key       string
				noTexts   bool
				answerErr error
			}{
				{"all of it lands", "pk /v1/links key-1", false, nil},
				{"none of it lands when the answer cannot be built", "pk /v1/links key-1", false, refused},
				{"no key stores no answer", "", false, nil},
				{"no texts queues none", "pk /v1/links key-1", true, nil},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					inv := newInvite("lnk_1", "+2348030000001", "loan-1", 24*time.Hour)
					texts := func(inv *link.Invite) []link.Text {
						return []link.Text{{ID: "sms_1", Kind: link.TextInvitation, To: inv.Phone, Data: map[string]string{"code": inv.Code}, Created: t0}}
					}
					if c.noTexts {
						texts = nil
					}
					err := b.Store.CreateInviteAnswered(ctx, inv, 4, t0, texts, c.key, func(inv *link.Invite) (link.Answer, error) {
						return link.Answer{Status: 201, Body: []byte(`{"code":"` + inv.Code + `"}`), Created: t0, RequestHash: []byte{1}}, c.answerErr
					})
					if c.answerErr != nil {
						if !errors.Is(err, c.answerErr) {
							t.Errorf("CreateInviteAnswered = %v, want the answer's error", err)
						}
					} else if err != nil {
						t.Fatalf("CreateInviteAnswered: %v", err)
					}
					landed := c.answerErr == nil
					stored, invErr := b.Store.Invite(ctx, "lnk_1")
					if (invErr == nil) != landed {
						t.Errorf("invitation stored = %v (%v), want %v", invErr == nil, invErr, landed)
					}
					if landed && !same(stored, inv) {
						t.Errorf("invitation = %s, want %s", show(stored), show(inv))
					}
					a, answered, err := b.Store.Idempotent(ctx, "pk /v1/links key-1")
					if err != nil {
						t.Fatal(err)
					}
					if want := landed && c.key != ""; answered != want {
						t.Errorf("answer stored = %v, want %v", answered, want)
					}
					if answered && string(a.Body) != `{"code":"`+inv.Code+`"}` {
						t.Errorf("answer = %s, want one built from the invitation with its code %s", a.Body, inv.Code)
					}
					msgs := due(t, b.Texts, t0)
					if want := landed && !c.noTexts; (len(msgs) == 1) != want || len(msgs) > 1 {
						t.Fatalf("texts queued = %v, want one: %v", ids(msgs), want)
					}
					if len(msgs) == 1 && (msgs[0].ID != "sms_1" || !containsAny(msgs[0].Body, inv.Code)) {
						t.Errorf("text = %s %s, want sms_1 carrying the code %s", msgs[0].ID, msgs[0].Body, inv.Code)
					}
				})
			}
		}},
		each("SweepAnswers forgets the answers saved before its cut-off, at most max, each aged from its last save", func(t *testing.T, b Backend) {
			ctx := t.Context()
			save := func(key string, at time.Time) {
				if err := b.Store.SaveAnswer(ctx, key, link.Answer{Status: 201, Body: []byte("{}"), Created: at}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				save(fmt.Sprintf("old-%d", i), t0.Add(time.Duration(i)*time.Minute))
			}
			save("at-cut", t0.Add(time.Hour))
			save("young", t0.Add(2*time.Hour))
			save("renewed", t0)
			save("renewed", t0.Add(5*time.Hour)) // an expired key used again: aged from its new answer
			cut := t0.Add(time.Hour)
			if n, err := b.Store.SweepAnswers(ctx, cut, 2); err != nil || n != 2 {
				t.Fatalf("SweepAnswers(max 2) = %d, %v; want 2", n, err)
			}
			if n, err := b.Store.SweepAnswers(ctx, cut, 100); err != nil || n != 1 {
				t.Fatalf("SweepAnswers again = %d, %v; want the last old one", n, err)
			}
			for key, want := range map[string]bool{"old-0": false, "old-1": false, "old-2": false, "at-cut": true, "young": true, "renewed": true} {
				if _, ok, err := b.Store.Idempotent(ctx, key); err != nil || ok != want {
					t.Errorf("answer %q kept = %v, %v; want %v", key, ok, err, want)
				}
			}
		}),
	}
}
