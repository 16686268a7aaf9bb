package storetest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// Values a user typed, kept as a record's secrets: none may be stored as
// they are.
const (
	secretPassword = "S3cr3t-P@ss*#"
	secretOTP      = "otp-918273"
	secretAnswer   = "Mum's <maiden> & name"
	// publicNote is in the same record's data, in the clear: a Raw that
	// does not show it cannot show a leaked secret either.
	publicNote = "mono-sess-55aa-public"
)

// fullRecord sets every field a conversation sets on a record.
func fullRecord(id, phone string) *link.SessionRecord {
	secrets, err := json.Marshal(map[string]string{"password": secretPassword, "otp": secretOTP, "answer": secretAnswer})
	if err != nil {
		panic(err)
	}
	return &link.SessionRecord{ID: id, Phone: phone, Updated: t0.Add(30 * time.Second), Purge: t0.Add(20 * time.Minute),
		Lapse: t0.Add(140 * time.Second), Data: state{State: "form", Hops: 7, Note: publicNote, Expires: t0.Add(210 * time.Second)}.encode(),
		Secrets: secrets}
}

// recordFields are the fields of link.SessionRecord sameRecord compares.
var recordFields = []string{"ID", "Phone", "Updated", "Purge", "Lapse", "Data", "Secrets", "SecretsLost", "SecretsLapsed"}

func sessionBehaviours() []behaviour {
	return []behaviour{
		each("a committed record reads back with every field, as a copy", func(t *testing.T, b Backend) {
			for f := range reflect.TypeFor[link.SessionRecord]().Fields() {
				if !slices.Contains(recordFields, f.Name) {
					t.Fatalf("link.SessionRecord.%s is not covered by the contract: compare it in sameRecord", f.Name)
				}
			}
			want := fullRecord("ATUid_rt", "+2348030000001")
			mustCommit(t, b.Store, link.Change{Session: want})
			got := mustSession(t, b.Store, want.ID)
			if diff := sameRecord(got, want); diff != "" {
				t.Errorf("Session after Commit: %s", diff)
			}
			if got == want {
				t.Fatal("Session returned the committed record itself, not what is stored")
			}
			got.Data, got.Secrets[0] = []byte(`{"state":"changed"}`), 'X'
			if diff := sameRecord(mustSession(t, b.Store, want.ID), want); diff != "" {
				t.Errorf("changing a record read back changed what is stored: %s", diff)
			}
		}),
		each("a commit keeps no hold on the record it was given", func(t *testing.T, b Backend) {
			r := fullRecord("ATUid_hold", "+2348030000001")
			want := *r
			want.Secrets, want.Data = bytes.Clone(r.Secrets), bytes.Clone(r.Data)
			mustCommit(t, b.Store, link.Change{Session: r})
			clear(r.Secrets) // the conversation erases what was typed once it is sealed
			clear(r.Data)
			r.Phone = "+2348030000009"
			if diff := sameRecord(mustSession(t, b.Store, want.ID), &want); diff != "" {
				t.Errorf("erasing the committed record changed what is stored: %s", diff)
			}
		}),
		each("an unknown session, or a phone with none, is ErrNoSession", func(t *testing.T, b Backend) {
			mustCommit(t, b.Store, link.Change{Session: record("known", "+2348030000001", state{State: "banks"})})
			if s, err := b.Store.Session(t.Context(), "never-seen"); !errors.Is(err, link.ErrNoSession) || s != nil {
				t.Errorf("Session(unknown) = %v, %v; want nil, ErrNoSession", show(s), err)
			}
			if s, err := b.Store.Latest(t.Context(), "+2348030000002"); !errors.Is(err, link.ErrNoSession) || s != nil {
				t.Errorf("Latest(phone with no session) = %v, %v; want nil, ErrNoSession", show(s), err)
			}
		}),
		each("a record without secrets reads back with none, though it had some", func(t *testing.T, b Backend) {
			r := fullRecord("ATUid_erase", "+2348030000001")
			mustCommit(t, b.Store, link.Change{Session: r})
			r.Secrets, r.Lapse = nil, time.Time{} // Mono used them
			mustCommit(t, b.Store, link.Change{Session: r})
			empty := fullRecord("ATUid_empty", "+2348030000002")
			empty.Secrets, empty.Lapse = []byte{}, time.Time{}
			mustCommit(t, b.Store, link.Change{Session: empty})
			for _, id := range []string{r.ID, empty.ID} {
				got := mustSession(t, b.Store, id)
				if len(got.Secrets) != 0 || got.SecretsLost || got.SecretsLapsed {
					t.Errorf("Session(%s) secrets = %q, lost %v, lapsed %v; want none, false, false", id, got.Secrets, got.SecretsLost, got.SecretsLapsed)
				}
			}
		}),
		each("secrets are never stored as they were typed", func(t *testing.T, b Backend) {
			if b.Raw == nil {
				t.Skip("the backend shows no raw storage (Backend.Raw)")
			}
			r := fullRecord("ATUid_leak", "+2348030000001")
			for i := range 3 { // a form fills up over several hops
				r.Purge = t0.Add(time.Duration(20+i) * time.Minute)
				mustCommit(t, b.Store, link.Change{Session: r})
			}
			if got := mustSession(t, b.Store, r.ID); !bytes.Equal(got.Secrets, r.Secrets) {
				t.Fatalf("Secrets read back = %q, want %q", got.Secrets, r.Secrets)
			}
			raw := b.Raw(t)
			if !containsAny(raw, publicNote) {
				t.Fatalf("Raw does not show the record's data %q in the clear: it cannot show a leaked secret either", publicNote)
			}
			for _, secret := range []string{secretPassword, secretOTP, secretAnswer} {
				for name, enc := range encodings(secret) {
					if bytes.Contains(raw, enc) {
						t.Errorf("storage holds %q (%s: %q)", secret, name, enc)
					}
				}
			}
		}),
		each("a commit writes the session, the one it retired, its link, events, texts and login failure together", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			key, ok, err := b.Store.ReserveAttempt(ctx, phone, t0.Add(-lockout), t0, 3)
			if err != nil || !ok {
				t.Fatalf("ReserveAttempt = %q, %v, %v", key, ok, err)
			}
			prev := record("prev", phone, state{State: "ended", Note: "resumed"})
			cur := record("cur", phone, state{State: "linked"})
			l := newLink("acc-1", phone, cur.ID)
			events := []link.Event{event("msg_a", link.TypeSubmitCredentials, "", cur.ID, t0), event("msg_b", link.TypeAccountLinked, l.AccountID, cur.ID, t0)}
			texts := []link.Text{text("sms_a", phone, t0)}
			mustCommit(t, b.Store, link.Change{Session: cur, Retired: prev, Link: l, Events: events, Texts: texts,
				LoginFailure: true, Release: []string{key}})

			for _, want := range []*link.SessionRecord{prev, cur} {
				if diff := sameRecord(mustSession(t, b.Store, want.ID), want); diff != "" {
					t.Errorf("Session(%s): %s", want.ID, diff)
				}
			}
			if got, ok, err := b.Store.Link(ctx, l.AccountID); err != nil || !ok || !same(got, l) {
				t.Errorf("Link = %v, %v, %v; want %v", show(got), ok, err, show(l))
			}
			if got, want := failures(t, b.Store, phone, t0.Add(-lockout)), 1; got != want {
				t.Errorf("LoginFailures = %d, want %d (the failure, not the released reservation)", got, want)
			}
			if got, want := ids(drainAll(t, b.Webhooks)), []string{"msg_a", "msg_b"}; !slices.Equal(got, want) {
				t.Errorf("webhooks queued = %v, want %v", got, want)
			}
			if got, want := ids(drainAll(t, b.Texts)), []string{"sms_a"}; !slices.Equal(got, want) {
				t.Errorf("texts queued = %v, want %v", got, want)
			}
		}),
		{name: "a commit that fails writes nothing of itself", run: func(t *testing.T, open opener) {
			for _, tc := range failingCommits() {
				t.Run(tc.name, func(t *testing.T) {
					b := open(t)
					ctx := t.Context()
					const phone = "+2348030000001"
					key, ok, err := b.Store.ReserveAttempt(ctx, phone, t0.Add(-lockout), t0, 3)
					if err != nil || !ok {
						t.Fatalf("ReserveAttempt = %q, %v, %v", key, ok, err)
					}
					cur := record("cur", phone, state{State: "linked"})
					c := link.Change{Session: cur, Retired: record("prev", phone, state{State: "ended"}),
						Link: newLink("acc-1", phone, cur.ID), Events: []link.Event{event("msg_a", link.TypeAccountLinked, "acc-1", cur.ID, t0)},
						Texts: []link.Text{text("sms_a", phone, t0)}, LoginFailure: true, Release: []string{key}}
					tc.poison(t, b, &c)
					if err := b.Store.Commit(ctx, c); err == nil {
						t.Fatal("Commit succeeded; want it to fail")
					}
					for _, id := range []string{"cur", "prev"} {
						if _, err := b.Store.Session(ctx, id); !errors.Is(err, link.ErrNoSession) {
							t.Errorf("Session(%s) after a failed commit: %v; want ErrNoSession", id, err)
						}
					}
					if _, err := b.Store.Latest(ctx, phone); !errors.Is(err, link.ErrNoSession) {
						t.Errorf("Latest after a failed commit: %v; want ErrNoSession", err)
					}
					if _, ok, err := b.Store.Link(ctx, "acc-1"); ok || err != nil {
						t.Errorf("Link after a failed commit = %v, %v; want none", ok, err)
					}
					if got := due(t, b.Webhooks, far); len(got) != 0 {
						t.Errorf("webhooks after a failed commit = %v; want none", ids(got))
					}
					if got := due(t, b.Texts, far); len(got) != 0 {
						t.Errorf("texts after a failed commit = %v; want none", ids(got))
					}
					if got, want := failures(t, b.Store, phone, t0.Add(-lockout)), 1; got != want {
						t.Errorf("LoginFailures after a failed commit = %d, want %d (the reservation still held, no failure)", got, want)
					}
				})
			}
		}},
		each("a commit's events are queued as webhooks and its texts as texts, as decided", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			e := event("msg_linked", link.TypeAccountLinked, "acc-1", "s1", t0.Add(time.Second))
			tx := text("sms_receipt", phone, t0.Add(2*time.Second))
			tx.Kind = link.TextReceipt
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Events: []link.Event{e}, Texts: []link.Text{tx}})

			hooks := due(t, b.Webhooks, e.Timestamp)
			if len(hooks) != 1 {
				t.Fatalf("webhooks due = %v, want the event", ids(hooks))
			}
			m := hooks[0]
			if m.ID != e.ID || m.Type != e.Type || !m.Created.Equal(e.Timestamp) || !m.Next.Equal(e.Timestamp) || m.Attempts != 0 || m.LastErr != "" {
				t.Errorf("webhook = %s; want id %s, type %s, created and due %v, no attempt", show(m), e.ID, e.Type, e.Timestamp)
			}
			var body webhookBody
			if err := json.Unmarshal(m.Body, &body); err != nil {
				t.Fatalf("webhook body %q: %v", m.Body, err)
			}
			if !same(body, webhookBody{Type: e.Type, Timestamp: e.Timestamp, Data: e.Data}) {
				t.Errorf("webhook body = %s, want the event's type, timestamp and data", m.Body)
			}
			if len(due(t, b.Webhooks, e.Timestamp.Add(-time.Microsecond))) != 0 {
				t.Error("the webhook is due before its event's time")
			}

			texts := due(t, b.Texts, tx.Created)
			if len(texts) != 1 {
				t.Fatalf("texts due = %v, want the text", ids(texts))
			}
			m = texts[0]
			if m.ID != tx.ID || m.Type != tx.Kind || !m.Created.Equal(tx.Created) || !m.Next.Equal(tx.Created) || m.Attempts != 0 {
				t.Errorf("text message = %s; want id %s, type %s, created and due %v", show(m), tx.ID, tx.Kind, tx.Created)
			}
			var got link.Text
			if err := json.Unmarshal(m.Body, &got); err != nil {
				t.Fatalf("text body %q: %v", m.Body, err)
			}
			if !same(got, tx) {
				t.Errorf("text body = %s, want %s", show(got), show(tx))
			}
		}),
		each("the retired session is written with the one that resumed it, which is the phone's latest", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			prev, next := record("prev", phone, state{State: "ended", Note: "resumed"}), record("next", phone, state{State: "form"})
			mustCommit(t, b.Store, link.Change{Session: next, Retired: prev})
			if got := stateOf(t, mustSession(t, b.Store, "prev")); got.Note != "resumed" {
				t.Errorf("retired session = %+v, want it ended as resumed", got)
			}
			if got, err := b.Store.Latest(t.Context(), phone); err != nil || got.ID != "next" {
				t.Errorf("Latest = %v, %v; want the resuming session", show(got), err)
			}
		}),
		each("Latest is the phone's last written session, with or without its +", func(t *testing.T, b Backend) {
			const phone, longer = "+233244000111", "+2332440001112" // the first is a prefix of the second
			for _, step := range []struct {
				id, phone, want string
			}{
				{"s1", phone, "s1"},
				{"s2", phone, "s2"},
				{"s1", phone, "s1"}, // written again: the latest again
				{"s3", longer, "s1"},
			} {
				mustCommit(t, b.Store, link.Change{Session: record(step.id, step.phone, state{Hops: 1})})
				for _, p := range []string{phone, phone[1:]} {
					if got, err := b.Store.Latest(t.Context(), p); err != nil || got.ID != step.want {
						t.Errorf("after writing %s, Latest(%s) = %v, %v; want %s", step.id, p, show(got), err, step.want)
					}
				}
			}
			if got, err := b.Store.Latest(t.Context(), longer); err != nil || got.ID != "s3" {
				t.Errorf("Latest(%s) = %v, %v; want s3", longer, show(got), err)
			}
		}),
		each("a link is found by its account and by its phone, with or without its +, in account order", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			second, first := newLink("acc-2", phone, "s1"), newLink("acc-1", phone, "s2")
			second.Bank, second.Reference = "Access Bank", "loan-2"
			second.DataStatus, second.ReauthRequired, second.Reauthorised = "AVAILABLE", true, t0.Add(time.Hour)
			elsewhere := newLink("acc-3", phone+"1", "s3") // the phone is a prefix of this one
			for _, l := range []*link.Link{second, first, elsewhere} {
				mustCommit(t, b.Store, link.Change{Session: record(l.SessionID, l.Phone, state{State: "linked"}), Link: l})
			}
			if got, ok, err := b.Store.Link(ctx, "acc-2"); err != nil || !ok || !same(got, second) {
				t.Errorf("Link(acc-2) = %v, %v, %v; want %v", show(got), ok, err, show(second))
			}
			for _, p := range []string{phone, phone[1:]} {
				links, err := b.Store.LinksByPhone(ctx, p)
				if err != nil || !same(links, []link.Link{*first, *second}) {
					t.Errorf("LinksByPhone(%s) = %v, %v; want acc-1, acc-2", p, show(links), err)
				}
			}
			if got, ok, err := b.Store.Link(ctx, "acc-unknown"); err != nil || ok || got != nil {
				t.Errorf("Link(unknown) = %v, %v, %v; want nil, false, nil", show(got), ok, err)
			}
			if links, err := b.Store.LinksByPhone(ctx, "+2340000000000"); err != nil || len(links) != 0 {
				t.Errorf("LinksByPhone(no links) = %v, %v; want none", show(links), err)
			}
		}),
		each("linking an account again replaces its link, and moves it to the phone it was linked from", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phoneA, phoneB = "+2348030000001", "+2348030000002"
			commit := func(l *link.Link) {
				mustCommit(t, b.Store, link.Change{Session: record(l.SessionID, l.Phone, state{State: "linked"}), Link: l})
			}
			commit(newLink("acc-1", phoneA, "s1"))
			again := newLink("acc-1", phoneA, "s2")
			again.Masked, again.Linked = "******1111", t0.Add(time.Hour)
			commit(again)
			if got, _, err := b.Store.Link(ctx, "acc-1"); err != nil || !same(got, again) {
				t.Errorf("Link after relinking = %v, %v; want %v", show(got), err, show(again))
			}
			if links, err := b.Store.LinksByPhone(ctx, phoneA); err != nil || !same(links, []link.Link{*again}) {
				t.Errorf("LinksByPhone after relinking from the same phone = %v, %v; want the new link once", show(links), err)
			}
			moved := newLink("acc-1", phoneB, "s3")
			commit(moved)
			if links, err := b.Store.LinksByPhone(ctx, phoneA); err != nil || len(links) != 0 {
				t.Errorf("LinksByPhone(old phone) = %v, %v; want none", show(links), err)
			}
			if links, err := b.Store.LinksByPhone(ctx, phoneB); err != nil || !same(links, []link.Link{*moved}) {
				t.Errorf("LinksByPhone(new phone) = %v, %v; want %v", show(links), err, show(moved))
			}
		}),
		each("concurrent commits all land", func(t *testing.T, b Backend) {
			const n = 24
			errs := make(chan error, n)
			for i := range n {
				go func() {
					id := fmt.Sprintf("conc-%02d", i)
					r := withSecrets(record(id, fmt.Sprintf("+23480300001%02d", i), state{Hops: i}), fmt.Sprintf("pin-%02d", i), t0.Add(time.Minute))
					errs <- b.Store.Commit(t.Context(), link.Change{Session: r, Link: newLink("acc-"+id, r.Phone, id),
						Events: []link.Event{event("msg_"+id, link.TypeAccountLinked, "acc-"+id, id, t0)}})
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Errorf("Commit: %v", err)
				}
			}
			for i := range n {
				id := fmt.Sprintf("conc-%02d", i)
				r := mustSession(t, b.Store, id)
				if stateOf(t, r).Hops != i || string(r.Secrets) != fmt.Sprintf("pin-%02d", i) {
					t.Errorf("Session(%s) = %s, want its own hop and secrets", id, show(r))
				}
				if _, ok, err := b.Store.Link(t.Context(), "acc-"+id); err != nil || !ok {
					t.Errorf("Link(acc-%s) = %v, %v", id, ok, err)
				}
			}
			if got := len(drainAll(t, b.Webhooks)); got != n {
				t.Errorf("%d webhooks queued, want %d", got, n)
			}
		}),
	}
}

// drainAll empties q, taking every message due at once, and returns them
// in the order Due gave them.
func drainAll(t *testing.T, q Outbox) []link.Message {
	t.Helper()
	var out []link.Message
	for range 1000 {
		msgs := due(t, q, far)
		if len(msgs) == 0 {
			return out
		}
		for _, m := range msgs {
			if err := q.Delivered(t.Context(), m.ID); err != nil {
				t.Fatalf("Delivered(%s): %v", m.ID, err)
			}
		}
		out = append(out, msgs...)
	}
	t.Fatal("the queue does not drain")
	return nil
}

// remember has Mono's account_updated for account remembered, received at
// at, as the webhook receiver does.
func remember(t *testing.T, s Store, eventID, account, status string, at time.Time) {
	t.Helper()
	_, err := s.MonoEvent(t.Context(), eventID, at, account, func(l *link.Link, _ *link.Invite) link.MonoOutcome {
		if l != nil {
			l.DataStatus = status
		}
		return link.MonoOutcome{Update: &link.MonoUpdate{AccountID: account, DataStatus: status, Received: at}}
	})
	if err != nil {
		t.Fatalf("MonoEvent(%s): %v", eventID, err)
	}
}

// containsAny reports whether raw holds s in one of the encodings a
// backend may store a value in.
func containsAny(raw []byte, s string) bool {
	for _, enc := range encodings(s) {
		if bytes.Contains(raw, enc) {
			return true
		}
	}
	return false
}

// encodings lists the forms a value could take in storage.
func encodings(s string) map[string][]byte {
	js, _ := json.Marshal(s)
	var noHTML bytes.Buffer
	enc := json.NewEncoder(&noHTML)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out := map[string][]byte{
		"plain":        []byte(s),
		"json":         js[1 : len(js)-1],
		"json no html": bytes.Trim(bytes.TrimSpace(noHTML.Bytes()), `"`),
		"url query":    []byte(url.QueryEscape(s)),
		"hex":          []byte(hex.EncodeToString([]byte(s))),
		"utf-16le":     utf16le(s),
	}
	// Inside a larger base64 text the value's encoding depends on where it
	// falls in a 3-byte group: take the characters it alone determines at
	// each of the three alignments.
	for shift := range 3 {
		for name, e := range map[string]*base64.Encoding{"base64": base64.StdEncoding, "base64 url": base64.URLEncoding} {
			data := append(make([]byte, shift), s...)
			text := e.EncodeToString(data)
			from, to := (shift+2)/3*4, len(data)/3*4
			out[fmt.Sprintf("%s at offset %d", name, shift)] = []byte(text[from:to])
		}
	}
	return out
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// failingCommit is a way to make a commit fail after some of its writes:
// poison changes c so that it does.
type failingCommit struct {
	name   string
	poison func(t *testing.T, b Backend, c *link.Change)
}

// failingCommits are the ways a commit of a change with a link fails:
// before anything is written, and midway through its transaction.
func failingCommits() []failingCommit {
	return []failingCommit{
		{"an event that cannot be encoded", func(t *testing.T, b Backend, c *link.Change) {
			c.Events = append(c.Events, link.Event{ID: "msg_bad", Type: link.TypeError, Timestamp: t0,
				Data: map[string]any{"session": c.Session.ID, "f": func() {}}})
		}},
		{"an announcement that fails midway through the transaction", func(t *testing.T, b Backend, c *link.Change) {
			// A remembered update makes the new link's commit ask
			// LinkUpdates, whose event fails for this reference.
			c.Link.Reference = PoisonReference
			remember(t, b.Store, "evt_poison_"+c.Link.AccountID, c.Link.AccountID, "AVAILABLE", c.Link.Linked.Add(-time.Minute))
		}},
	}
}
