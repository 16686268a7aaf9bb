package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// Languages is what the conversation, the partner API and the shortcuts
// keep of each phone's chosen language: a code such as "ha" (at most 16
// bytes of a to z and "-"; any other is an error, and nothing changes),
// set in a session's commit (link.Change.Language), and kept
// until changed. Phones are one phone with or without their "+".
type Languages interface {
	// PhoneLanguage returns the phone's chosen language, "" when none.
	PhoneLanguage(ctx context.Context, phone string) (string, error)
}

// phoneLanguage reads a phone's language.
func phoneLanguage(t *testing.T, s Store, phone string) string {
	t.Helper()
	got, err := s.PhoneLanguage(t.Context(), phone)
	if err != nil {
		t.Fatalf("PhoneLanguage(%q): %v", phone, err)
	}
	return got
}

// checkLanguage checks the language read for a phone, however it is
// written: with its "+" and without.
func checkLanguage(t *testing.T, s Store, phone, want string) {
	t.Helper()
	key := link.PhoneKey(phone)
	for _, written := range []string{"+" + key, key} {
		if got := phoneLanguage(t, s, written); got != want {
			t.Errorf("PhoneLanguage(%q) = %q, want %q", written, got, want)
		}
	}
}

// setLanguage makes language the phone's choice, as a session of its
// choosing it commits.
func setLanguage(t *testing.T, s Store, phone, language string) {
	t.Helper()
	id := "choose-" + link.PhoneKey(phone) + "-" + language
	mustCommit(t, s, link.Change{Session: record(id, phone, state{State: "menu"}), Language: language})
}

// notCodes are languages no backend keeps.
var notCodes = []struct{ name, language string }{
	{"a code longer than 16 bytes", strings.Repeat("a", 17)},
	{"an uppercase letter", "Ha"},
	{"a digit", "ha1"},
	{"an underscore", "en_ng"},
	{"a space", "ha "},
	{"a NUL", "ha\x00"},
	{"a letter outside ASCII", "yó"},
}

func languageBehaviours() []behaviour {
	return []behaviour{
		{name: "a committed change's language is its phone's, however the phone is written", run: func(t *testing.T, open opener) {
			for _, c := range []struct{ name, phone string }{
				{"committed with its plus", "+2348030000001"},
				{"committed without it", "2348030000001"},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					mustCommit(t, b.Store, link.Change{Session: record("s1", c.phone, state{State: "menu"}), Language: "ha"})
					checkLanguage(t, b.Store, c.phone, "ha")
					checkLanguage(t, b.Store, "+2348030000002", "")
				})
			}
		}},
		each("a later choice replaces the phone's earlier one", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{State: "menu"}), Language: "ha"})
			mustCommit(t, b.Store, link.Change{Session: record("s2", link.PhoneKey(phone), state{State: "menu"}), Language: "yo"})
			checkLanguage(t, b.Store, phone, "yo")
			setLanguage(t, b.Store, phone, "pcm")
			checkLanguage(t, b.Store, phone, "pcm")
			mustCommit(t, b.Store, link.Change{Session: record("s3", phone, state{State: "menu"}), Language: "en"})
			checkLanguage(t, b.Store, phone, "en")
		}),
		each("a change without a language leaves the phone's choice", func(t *testing.T, b Backend) {
			const phone, other = "+2348030000001", "+2348030000002"
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{State: "menu"}), Language: "ha"})
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{State: "banks", Hops: 1})})
			mustCommit(t, b.Store, link.Change{Session: record("s2", phone, state{State: "menu"}), LoginFailure: true})
			mustCommit(t, b.Store, link.Change{Session: record("s3", other, state{State: "menu"}), Language: "yo"})
			checkLanguage(t, b.Store, phone, "ha")
			checkLanguage(t, b.Store, other, "yo")
		}),
		each("a phone that never chose reads no language", func(t *testing.T, b Backend) {
			mustCommit(t, b.Store, link.Change{Session: record("s1", "+2348030000001", state{State: "menu"})})
			setLanguage(t, b.Store, "+2348030000002", "ha")
			for _, phone := range []string{"+2348030000001", "+2348039999999", "2348039999999"} {
				if got := phoneLanguage(t, b.Store, phone); got != "" {
					t.Errorf("PhoneLanguage(%q) = %q, want none", phone, got)
				}
			}
		}),
		each("a language that is not a code is refused and changes nothing", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{State: "menu"}), Language: "ha"})
			for _, c := range notCodes {
				t.Run(c.name, func(t *testing.T) {
					if err := b.Store.Commit(ctx, link.Change{Session: record("s2", phone, state{State: "menu"}), Language: c.language}); err == nil {
						t.Errorf("Commit with language %q succeeded; want it refused", c.language)
					}
					if _, err := b.Store.Session(ctx, "s2"); !errors.Is(err, link.ErrNoSession) {
						t.Errorf("Session(s2) after the refused commit: %v; want link.ErrNoSession", err)
					}
					checkLanguage(t, b.Store, phone, "ha")
					checkLanguage(t, b.Store, "+2348030000002", "")
				})
			}
		}),
		{name: "a commit that fails stores no language", run: func(t *testing.T, open opener) {
			for _, c := range failingCommits() {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					const phone, chosen = "+2348030000001", "+2348030000002"
					setLanguage(t, b.Store, chosen, "ha")
					for _, p := range []string{phone, chosen} {
						cur := record("cur-"+link.PhoneKey(p), p, state{State: "linked"})
						change := link.Change{Session: cur, Link: newLink("acc-"+link.PhoneKey(p), p, cur.ID), Language: "yo"}
						c.poison(t, b, &change)
						if err := b.Store.Commit(t.Context(), change); err == nil {
							t.Fatal("Commit succeeded; want it to fail")
						}
					}
					checkLanguage(t, b.Store, phone, "")
					checkLanguage(t, b.Store, chosen, "ha")
				})
			}
		}},
		each("a phone's language survives a reopen", func(t *testing.T, b Backend) {
			mustCommit(t, b.Store, link.Change{Session: record("s1", "+2348030000001", state{State: "menu"}), Language: "ha"})
			setLanguage(t, b.Store, "2348030000002", "pcm")
			b = reopen(t, b)
			checkLanguage(t, b.Store, "+2348030000001", "ha")
			checkLanguage(t, b.Store, "+2348030000002", "pcm")
		}),
	}
}

// FirstLooks is what the conversation's first screen reads of a phone at
// once (link.FirstLook): each part as its own read gives it.
type FirstLooks interface {
	FirstLook(ctx context.Context, phone string, since, now time.Time) (link.FirstLook, error)
}

func firstLookBehaviours() []behaviour {
	return []behaviour{
		each("a first look reads what each of its reads reads alone", func(t *testing.T, b Backend) {
			const phone, other = "+2348030000001", "+2348030000002"
			ctx := t.Context()
			since, now := t0.Add(-time.Minute), t0.Add(2*time.Minute)
			// A refused login before the lockout's window, one in it, and a
			// reservation; an older session and the latest, with its secrets;
			// an older usable invitation and the newest.
			old := record("s0", phone, state{State: "menu"})
			old.Updated = t0.Add(-time.Hour)
			mustCommit(t, b.Store, link.Change{Session: old, LoginFailure: true})
			mustCommit(t, b.Store, link.Change{Session: withSecrets(record("s1", phone, state{State: "menu"}), "typed", t0.Add(time.Hour)),
				Language: "ha", LoginFailure: true})
			if _, ok, err := b.Store.ReserveAttempt(ctx, phone, since, t0.Add(time.Second), 10); err != nil || !ok {
				t.Fatalf("ReserveAttempt: %v, %v", ok, err)
			}
			older := newInvite("inv_0", phone, "ref-0", time.Hour)
			older.Created = t0.Add(-time.Second)
			mustCreate(t, b.Store, older, 6)
			mustCreate(t, b.Store, newInvite("inv_1", phone, "ref-1", time.Hour), 6)
			mustCreate(t, b.Store, newInvite("inv_2", other, "ref-2", time.Minute), 6) // another phone's, and lapsed at now
			for _, p := range []string{phone, link.PhoneKey(phone), other, "+2348030000003"} {
				t.Run(p, func(t *testing.T) {
					got, err := b.Store.FirstLook(ctx, p, since, now)
					if err != nil {
						t.Fatal(err)
					}
					failures, err := b.Store.LoginFailures(ctx, p, since)
					if err != nil {
						t.Fatal(err)
					}
					latest, lerr := b.Store.Latest(ctx, p)
					if lerr != nil && !errors.Is(lerr, link.ErrNoSession) {
						t.Fatal(lerr)
					}
					invite, ierr := b.Store.PendingInvite(ctx, p, now)
					if ierr != nil && !errors.Is(ierr, link.ErrNoInvite) {
						t.Fatal(ierr)
					}
					switch {
					case got.Failures != failures:
						t.Errorf("failures %d, want %d", got.Failures, failures)
					case got.Language != phoneLanguage(t, b.Store, p):
						t.Errorf("language %q, want %q", got.Language, phoneLanguage(t, b.Store, p))
					case (got.Latest == nil) != (latest == nil) ||
						got.Latest != nil && (got.Latest.ID != latest.ID || string(got.Latest.Secrets) != string(latest.Secrets)):
						t.Errorf("latest %+v, want %+v", got.Latest, latest)
					case (got.Invite == nil) != (invite == nil) || got.Invite != nil && got.Invite.ID != invite.ID:
						t.Errorf("invite %+v, want %+v", got.Invite, invite)
					}
					if link.PhoneKey(p) == link.PhoneKey(phone) && (got.Failures != 2 || got.Language != "ha" ||
						got.Latest == nil || got.Latest.ID != "s1" || string(got.Latest.Secrets) != "typed" || got.Invite == nil || got.Invite.ID != "inv_1") {
						t.Errorf("the phone's first look %+v: want 2 attempts in the window, its language, its latest session with its secrets opened, its newest invitation", got)
					}
				})
			}
		}),
	}
}
