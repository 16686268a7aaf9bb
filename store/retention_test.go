package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// Retentions the tests sweep with, as the gateway's defaults.
const (
	idempotencyTTL  = 24 * time.Hour
	inviteRetention = 720 * time.Hour
	seenRetention   = 72 * time.Hour
	deadRetention   = 30 * 24 * time.Hour
)

// bucketSizes counts the keys of every bucket.
func bucketSizes(t *testing.T, db *store.DB) map[string]int {
	t.Helper()
	sizes, err := db.BucketSizes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// nonEmpty lists the buckets holding keys, but those named in keep.
func nonEmpty(sizes map[string]int, keep ...string) []string {
	var out []string
	for name, n := range sizes {
		kept := false
		for _, k := range keep {
			kept = kept || k == name
		}
		if n > 0 && !kept {
			out = append(out, fmt.Sprintf("%s=%d", name, n))
		}
	}
	sort.Strings(out)
	return out
}

// sweepAll sweeps everything at now as the gateway's sweeper does, until
// nothing more goes.
func sweepAll(t *testing.T, db *store.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	for _, sweep := range []func() (int, error){
		func() (int, error) { return db.Sweep(ctx, now, 1000) },
		func() (int, error) { return db.SweepFailures(ctx, now.Add(-30*time.Minute), 1000) },
		func() (int, error) { return db.SweepMonoEvents(ctx, now.Add(-seenRetention), 1000) },
		func() (int, error) { return db.SweepInbound(ctx, now.Add(-seenRetention), 1000) },
		func() (int, error) { return db.SweepAnswers(ctx, now.Add(-idempotencyTTL), 1000) },
		func() (int, error) { return db.SweepConversations(ctx, now, 1000) },
		func() (int, error) { return db.SweepInvites(ctx, now, now.Add(-inviteRetention), 1000) },
		func() (int, error) { return db.Webhooks().SweepDeadLetters(ctx, now.Add(-deadRetention), 1000) },
		func() (int, error) { return db.Texts().SweepDeadLetters(ctx, now.Add(-deadRetention), 1000) },
	} {
		for {
			n, err := sweep()
			if err != nil {
				t.Fatal(err)
			}
			if n < 1000 {
				break
			}
		}
	}
}

// newInvite is an invitation created at t0 that can be used for ttl.
func newInvite(id, phone, ref string, ttl time.Duration) *link.Invite {
	kind := link.InviteLink
	if id[:4] == "rea_" {
		kind = link.InviteReauth
	}
	return &link.Invite{ID: id, Kind: kind, Phone: phone, Reference: ref, AccountID: "acc-" + id,
		Status: link.StatusPending, Created: t0, Updated: t0, Expires: t0.Add(ttl)}
}

func TestInviteAndItsAnswerCommitTogether(t *testing.T) {
	cases := []struct {
		name   string
		answer error // what building the answer fails with, if it does
	}{
		{"both land", nil},
		{"neither lands when the answer cannot be built", errors.New("encode failed")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, filepath.Join(t.TempDir(), "answer.db"), newSealer(t, 0x31))
			defer db.Close()
			inv := newInvite("lnk_1", "+2348030000001", "loan-1", 24*time.Hour)
			texts := func(inv *link.Invite) []link.Text {
				return []link.Text{{ID: "sms_1", Kind: link.TextInvitation, To: inv.Phone, Created: t0}}
			}
			err := db.CreateInviteAnswered(ctx, inv, 4, t0, texts, "scope key-1", func(inv *link.Invite) (link.Answer, error) {
				return link.Answer{Status: 201, Body: []byte(`{"code":"` + inv.Code + `"}`), Created: t0, RequestHash: []byte{1}}, tc.answer
			})
			if got, want := err != nil, tc.answer != nil; got != want {
				t.Fatalf("CreateInviteAnswered error = %v, want an error %v", err, want)
			}
			_, invErr := db.Invite(ctx, "lnk_1")
			a, answered, aErr := db.Idempotent(ctx, "scope key-1")
			if aErr != nil {
				t.Fatal(aErr)
			}
			texted, _ := db.Texts().Due(ctx, t0, 10)
			landed := tc.answer == nil
			if got := invErr == nil; got != landed {
				t.Errorf("invitation stored = %v, want %v", got, landed)
			}
			if answered != landed || len(texted) == 1 != landed {
				t.Errorf("answer stored = %v, texts = %d; want both only with the invitation (%v)", answered, len(texted), landed)
			}
			if landed && string(a.Body) != `{"code":"`+inv.Code+`"}` {
				t.Errorf("answer = %s, want one built from the invitation with its code %s", a.Body, inv.Code)
			}
		})
	}
}

func TestIdempotencyAnswersAreSweptAfterTheirTTL(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "answers.db"), newSealer(t, 0x32))
	defer db.Close()
	save := func(key string, at time.Time) {
		if err := db.SaveAnswer(ctx, key, link.Answer{Status: 201, Body: []byte("{}"), Created: at}); err != nil {
			t.Fatal(err)
		}
	}
	save("old", t0)
	save("young", t0.Add(2*time.Hour))
	save("renewed", t0)
	save("renewed", t0.Add(5*time.Hour)) // an expired key used again: aged from its new answer
	if n, err := db.SweepAnswers(ctx, t0.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("sweep before t0+1h = %d, %v; want only the old answer", n, err)
	}
	for key, want := range map[string]bool{"old": false, "young": true, "renewed": true} {
		if _, ok, _ := db.Idempotent(ctx, key); ok != want {
			t.Errorf("answer %q kept = %v, want %v", key, ok, want)
		}
	}
	if n, _ := db.SweepAnswers(ctx, t0.Add(6*time.Hour), 100); n != 2 {
		t.Errorf("second sweep = %d, want 2", n)
	}
	if left := nonEmpty(bucketSizes(t, db)); len(left) != 0 {
		t.Errorf("after sweeping every answer, buckets hold %v", left)
	}
}

func TestAbandonedConversationsAreSwept(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "convs.db"), newSealer(t, 0x33))
	defer db.Close()
	set := func(phone string, c link.Conversation) {
		if err := db.SetConversation(ctx, phone, c); err != nil {
			t.Fatal(err)
		}
	}
	set("+2348030000001", link.Conversation{Session: "a", Seq: 1, Expires: t0.Add(10 * time.Minute)})
	set("+2348030000002", link.Conversation{Session: "b", Seq: 1, Expires: t0.Add(time.Hour)})
	set("+2348030000003", link.Conversation{Session: "c", Seq: 1, Expires: t0.Add(time.Minute)})
	set("+2348030000001", link.Conversation{Session: "a", Seq: 2, Expires: t0.Add(2 * time.Hour)}) // a texted again
	set("+2348030000003", link.Conversation{})                                                     // c ended

	if n, err := db.SweepConversations(ctx, t0.Add(30*time.Minute), 100); err != nil || n != 0 {
		t.Errorf("sweep at t0+30m = %d, %v; want none (a went on, c ended)", n, err)
	}
	if n, _ := db.SweepConversations(ctx, t0.Add(90*time.Minute), 100); n != 1 {
		t.Errorf("sweep at t0+90m = %d, want b", n)
	}
	for phone, want := range map[string]bool{"+2348030000001": true, "+2348030000002": false, "+2348030000003": false} {
		if _, ok, _ := db.Conversation(ctx, phone); ok != want {
			t.Errorf("conversation of %s kept = %v, want %v", phone, ok, want)
		}
	}
	db.SweepConversations(ctx, t0.Add(3*time.Hour), 100)
	if left := nonEmpty(bucketSizes(t, db)); len(left) != 0 {
		t.Errorf("after every conversation expired, buckets hold %v", left)
	}
}

func TestInvitationsAreSweptWithEveryIndexEntry(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "invites.db"), newSealer(t, 0x34))
	defer db.Close()
	for _, inv := range []*link.Invite{
		newInvite("hnd_1", "+2348030000001", "", 10*time.Minute),
		newInvite("hnd_2", "+2348030000001", "loan-1", 10*time.Minute),
		newInvite("lnk_1", "+2348030000002", "loan-2", 24*time.Hour),
		newInvite("rea_1", "+2348030000003", "loan-3", 24*time.Hour),
	} {
		if err := db.CreateInvite(ctx, inv, 4, t0); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		now  time.Time
		kept []string
	}{
		{"while usable, everything is kept", t0.Add(5 * time.Minute), []string{"hnd_1", "hnd_2", "lnk_1", "rea_1"}},
		{"expired hand-overs go at once", t0.Add(11 * time.Minute), []string{"lnk_1", "rea_1"}},
		{"expired partner invitations stay for the retention", t0.Add(24*time.Hour + inviteRetention - time.Minute), []string{"lnk_1", "rea_1"}},
		{"then they go", t0.Add(24*time.Hour + inviteRetention + time.Minute), nil},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if _, err := db.SweepInvites(ctx, step.now, step.now.Add(-inviteRetention), 100); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"hnd_1", "hnd_2", "lnk_1", "rea_1"} {
				_, err := db.Invite(ctx, id)
				kept := err == nil
				want := false
				for _, k := range step.kept {
					want = want || k == id
				}
				if kept != want {
					t.Errorf("invitation %s kept = %v, want %v", id, kept, want)
				}
			}
		})
	}
	if left := nonEmpty(bucketSizes(t, db)); len(left) != 0 {
		t.Errorf("after every invitation was swept, buckets hold %v (an index entry was left behind)", left)
	}
}

func TestAnInvitationIsKeptFromTheLaterOfItsExpiryAndLastChange(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "changed.db"), newSealer(t, 0x35))
	defer db.Close()
	for _, inv := range []*link.Invite{
		newInvite("lnk_1", "+2348030000002", "loan-2", time.Hour),
		newInvite("rea_1", "+2348030000003", "loan-3", time.Hour),
	} {
		if err := db.CreateInvite(ctx, inv, 4, t0); err != nil {
			t.Fatal(err)
		}
	}
	// lnk_1 is linked before it expires: kept from its expiry.
	linked := newInvite("lnk_1", "+2348030000002", "loan-2", time.Hour)
	linked.Status, linked.Updated = link.StatusLinked, t0.Add(30*time.Minute)
	if err := db.Commit(ctx, link.Change{Session: fullRecord("s1"), Invite: linked}); err != nil {
		t.Fatal(err)
	}
	// rea_1 is changed by Mono's webhook two days after it expired: kept
	// from then.
	changed := t0.Add(48 * time.Hour)
	_, err := db.MonoEvent(ctx, "evt-1", changed, "acc-rea_1", func(_ *link.Link, reauth *link.Invite) link.MonoOutcome {
		reauth.Updated = changed
		return link.MonoOutcome{}
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		now  time.Time
		kept map[string]bool
	}{
		{t0.Add(time.Hour + inviteRetention - time.Minute), map[string]bool{"lnk_1": true, "rea_1": true}},
		{t0.Add(time.Hour + inviteRetention + time.Minute), map[string]bool{"lnk_1": false, "rea_1": true}},
		{changed.Add(inviteRetention + time.Minute), map[string]bool{"lnk_1": false, "rea_1": false}},
	}
	for _, step := range steps {
		if _, err := db.SweepInvites(ctx, step.now, step.now.Add(-inviteRetention), 100); err != nil {
			t.Fatal(err)
		}
		for id, want := range step.kept {
			if _, err := db.Invite(ctx, id); (err == nil) != want {
				t.Errorf("at %v, invitation %s kept = %v, want %v", step.now.Sub(t0), id, err == nil, want)
			}
		}
	}
}

func TestOpenIndexesWhatAnOlderVersionStored(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db := openDB(t, path, newSealer(t, 0x36))
	if err := db.CreateInvite(ctx, newInvite("hnd_1", "+2348030000001", "", 10*time.Minute), 4, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.SetConversation(ctx, "+2348030000001", link.Conversation{Session: "a", Expires: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveAnswer(ctx, "k", link.Answer{Status: 201, Created: t0}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// A file from before the retention indexes has the records, not the indexes.
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"idempotency_age", "sms_session_expiry", "invite_age"} {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path, newSealer(t, 0x36))
	defer db.Close()
	sweepAll(t, db, t0.Add(48*time.Hour))
	if left := nonEmpty(bucketSizes(t, db)); len(left) != 0 {
		t.Errorf("records stored before the indexes were not swept: %v", left)
	}
}

func TestDeadLettersAreSweptAfterTheirRetention(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "dead.db"), newSealer(t, 0x37))
	defer db.Close()
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour), t0.Add(3 * time.Hour)} {
		id := fmt.Sprintf("sms_%d", i)
		if err := db.EnqueueTexts(ctx, link.Text{ID: id, Kind: link.TextReply, To: "+2348030000001", Created: at}); err != nil {
			t.Fatal(err)
		}
		if err := db.Texts().GiveUp(ctx, id, "refused"); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.Texts().SweepDeadLetters(ctx, t0.Add(90*time.Minute), 100); err != nil || n != 2 {
		t.Fatalf("swept %d, %v; want the 2 older than the cut-off", n, err)
	}
	if n, _ := db.Texts().SweepDeadLetters(ctx, t0.Add(24*time.Hour), 1); n != 1 {
		t.Errorf("a sweep of at most 1 deleted %d", n)
	}
	left, _ := db.Texts().DeadLetters(ctx)
	if len(left) != 1 || left[0].ID != "sms_3" {
		t.Errorf("dead letters left = %v, want sms_3", left)
	}
}

// TestJunkFloodIsReclaimed floods the store with what outside callers can
// cause without linking anything, then sweeps past every retention: every
// bucket is empty again, and what has a longer retention stays until then.
func TestJunkFloodIsReclaimed(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "flood.db"), newSealer(t, 0x38), store.WithBatchDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	phone := func(i int) string { return fmt.Sprintf("+23480%08d", i) }
	for i := range 300 { // dials that go nowhere, some typing a password that is refused
		s := record(fmt.Sprintf("junk-%d", i), phone(i), conversation{State: "banks", Expires: t0.Add(3 * time.Minute)})
		s.Purge = t0.Add(13 * time.Minute)
		if i%3 == 0 {
			s.Secrets, s.Lapse = secrets(map[string]string{"password": "guess"}), t0.Add(2*time.Minute)
		}
		if err := db.Commit(ctx, link.Change{Session: s, LoginFailure: i%5 == 0}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 { // texts that open a conversation and leave it
		if _, err := db.FirstDelivery(ctx, "termii", fmt.Sprintf("msg-%d", i), t0); err != nil {
			t.Fatal(err)
		}
		c := link.Conversation{Session: fmt.Sprintf("sms-%d", i), Seq: 1, Expires: t0.Add(10 * time.Minute)}
		if err := db.SetConversation(ctx, phone(1000+i), c); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 { // hand-overs to USSD never dialled; partner invitations, half with a key
		if err := db.CreateInvite(ctx, newInvite(fmt.Sprintf("hnd_%d", i), phone(2000+i), "", 10*time.Minute), 4, t0); err != nil {
			t.Fatal(err)
		}
		inv := newInvite(fmt.Sprintf("lnk_%d", i), phone(3000+i), fmt.Sprintf("ref-%d", i), 24*time.Hour)
		key := ""
		if i%2 == 0 {
			key = fmt.Sprintf("pk /v1/links key-%d", i)
		}
		err := db.CreateInviteAnswered(ctx, inv, 4, t0, nil, key, func(*link.Invite) (link.Answer, error) {
			return link.Answer{Status: 201, Body: []byte("{}"), Created: t0}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 { // Mono's webhooks, and texts no one could receive
		if _, err := db.MonoEvent(ctx, fmt.Sprintf("evt-%d", i), t0, "acc-none", func(*link.Link, *link.Invite) link.MonoOutcome {
			return link.MonoOutcome{}
		}); err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("sms_dead_%d", i)
		if err := db.EnqueueTexts(ctx, link.Text{ID: id, Kind: link.TextReply, To: phone(i), Created: t0}); err != nil {
			t.Fatal(err)
		}
		if err := db.Texts().GiveUp(ctx, id, "unreachable"); err != nil {
			t.Fatal(err)
		}
	}
	before := bucketSizes(t, db)
	for _, name := range []string{"session_keys", "session_rows", "expiry", "phones", "sealed", "failures", "failure_age", "sms_sessions",
		"sms_session_expiry", "sms_seen", "sms_seen_age", "invites", "invite_codes", "invite_phone", "invite_ref",
		"invite_age", "idempotency", "idempotency_age", "mono_events", "mono_event_age", "sms_outbox_dead"} {
		if before[name] == 0 {
			t.Errorf("the flood left bucket %s empty: the test does not cover it", name)
		}
	}
	steps := []struct {
		name  string
		after time.Duration
		kept  []string // buckets that still hold keys
	}{
		{"sessions, conversations and hand-overs go once expired", time.Hour,
			[]string{"sms_seen", "sms_seen_age", "invites", "invite_codes", "invite_phone", "invite_ref", "invite_age",
				"idempotency", "idempotency_age", "mono_events", "mono_event_age", "sms_outbox_dead"}},
		{"idempotency answers go after their ttl", idempotencyTTL + time.Hour,
			[]string{"sms_seen", "sms_seen_age", "invites", "invite_codes", "invite_phone", "invite_ref", "invite_age",
				"mono_events", "mono_event_age", "sms_outbox_dead"}},
		{"seen ids go after they can no longer be retried", seenRetention + time.Hour,
			[]string{"invites", "invite_codes", "invite_phone", "invite_ref", "invite_age", "sms_outbox_dead"}},
		{"partner invitations and dead letters go after their retention", 24*time.Hour + inviteRetention + time.Hour, nil},
	}
	for _, step := range steps {
		sweepAll(t, db, t0.Add(step.after))
		sizes := bucketSizes(t, db)
		if left := nonEmpty(sizes, step.kept...); len(left) != 0 {
			t.Errorf("%s: buckets still hold %v", step.name, left)
		}
		for _, name := range step.kept {
			if sizes[name] == 0 {
				t.Errorf("%s: bucket %s was emptied before its retention", step.name, name)
			}
		}
	}
}
