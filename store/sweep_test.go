package store_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func TestSweepDeletesSessionsPastTheirPurgeTimeOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sweep.db")
	db := openDB(t, path, newSealer(t, 0x22))
	purge := map[string]time.Duration{
		"old-1":  -10 * time.Minute,
		"old-2":  -time.Second,
		"due":    0, // due exactly now is kept: purge times are exclusive
		"young":  time.Minute,
		"future": time.Hour,
	}
	for id, d := range purge {
		s := fullRecord(id)
		s.Phone = "+234-" + id
		s.Secrets = secrets(map[string]string{"password": "sealed-" + id})
		s.Purge = t0.Add(d)
		if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := db.Sweep(ctx, t0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 2; got != want {
		t.Errorf("swept %d sessions, want %d", got, want)
	}
	for id, d := range purge {
		_, err := db.Session(ctx, id)
		gone := errors.Is(err, link.ErrNoSession)
		if got, want := gone, d < 0; got != want {
			t.Errorf("session %s gone = %v, want %v (err %v)", id, got, want, err)
		}
		_, err = db.Latest(ctx, "+234-"+id)
		if got, want := errors.Is(err, link.ErrNoSession), d < 0; got != want {
			t.Errorf("phone index of %s gone = %v, want %v", id, got, want)
		}
	}
	if n, _ := db.Sweep(ctx, t0, 100); n != 0 {
		t.Errorf("second sweep deleted %d", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if entries := readExpiry(t, path); len(entries) != 3 {
		t.Errorf("expiry index after sweep = %v, want the 3 remaining sessions", entries)
	}
}

func TestSweepStopsAtItsLimit(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "sweep.db"), newSealer(t, 0x22))
	for i := range 25 {
		s := fullRecord("s" + string(rune('a'+i)))
		s.Purge = t0.Add(-time.Duration(i+1) * time.Minute)
		if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for {
		n, err := db.Sweep(ctx, t0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if n > 10 {
			t.Fatalf("swept %d, over the limit of 10", n)
		}
		total += n
		if n < 10 {
			break
		}
	}
	if total != 25 {
		t.Errorf("swept %d in all, want 25", total)
	}
}

func TestPhoneIndexFollowsTheLatestSessionAndSurvivesSweepingAnOlderOne(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "latest.db"), newSealer(t, 0x22))
	old, cur := fullRecord("old"), fullRecord("cur")
	old.Purge, cur.Purge = t0.Add(-time.Minute), t0.Add(time.Hour)
	for _, s := range []*link.SessionRecord{old, cur} {
		if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Sweep(ctx, t0, 10); err != nil {
		t.Fatal(err)
	}
	got, err := db.Latest(ctx, cur.Phone)
	if err != nil || got.ID != "cur" {
		t.Fatalf("Latest = %v, %v; want cur", got, err)
	}
}

func TestRetiredSessionIsCommittedWithTheOneThatResumedIt(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "retire.db"), newSealer(t, 0x22))
	prev, next := fullRecord("prev"), fullRecord("next")
	prev.Data, prev.Secrets = conversation{State: "ended", Reason: "resumed"}.encode(), nil
	if err := db.Commit(ctx, link.Change{Session: next, Retired: prev}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Session(ctx, "prev")
	if err != nil || stateOf(t, got).Reason != "resumed" {
		t.Fatalf("retired session = %+v, %v", got, err)
	}
	latest, err := db.Latest(ctx, next.Phone)
	if err != nil || latest.ID != "next" {
		t.Fatalf("Latest = %v, %v; want the resuming session", latest, err)
	}
}

func TestLoginFailuresCountPerPhoneSinceATimeAndAreSwept(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "failures.db"), newSealer(t, 0x22))
	fail := func(phone string, at time.Time) {
		s := fullRecord("f-" + phone)
		s.Phone, s.Updated = phone, at
		if err := db.Commit(ctx, link.Change{Session: s, LoginFailure: true}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		fail("+2348000000001", t0) // the same instant, three times
	}
	fail("+2348000000001", t0.Add(-time.Hour))
	fail("+23480000000011", t0) // a phone that starts with the other's digits
	count := func(phone string, since time.Time) int {
		n, err := db.LoginFailures(ctx, phone, since)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got, want := count("+2348000000001", t0.Add(-30*time.Minute)), 3; got != want {
		t.Errorf("failures within the lockout = %d, want %d", got, want)
	}
	if got, want := count("+2348000000001", t0.Add(-2*time.Hour)), 4; got != want {
		t.Errorf("failures within two hours = %d, want %d", got, want)
	}
	if got, want := count("+23480000000011", t0.Add(-time.Hour)), 1; got != want {
		t.Errorf("failures of the longer phone = %d, want %d", got, want)
	}
	n, err := db.SweepFailures(ctx, t0.Add(-30*time.Minute), 100)
	if err != nil || n != 1 {
		t.Fatalf("SweepFailures = %d, %v; want the one old failure", n, err)
	}
	if got, want := count("+2348000000001", t0.Add(-2*time.Hour)), 3; got != want {
		t.Errorf("failures after the sweep = %d, want %d", got, want)
	}
}

func TestSweepErasesLapsedSealedAnswersFromSessionsThatStay(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "scrub.db"), newSealer(t, 0x22))
	lapsed, fresh := fullRecord("lapsed"), fullRecord("fresh")
	lapsed.Phone, fresh.Phone = "+2348000000021", "+2348000000022"
	for _, s := range []*link.SessionRecord{lapsed, fresh} {
		s.Secrets = secrets(map[string]string{"password": "sealed-" + s.ID})
		s.Purge = t0.Add(time.Hour)
	}
	lapsed.Lapse, fresh.Lapse = t0.Add(-time.Second), t0.Add(time.Minute)
	for _, s := range []*link.SessionRecord{lapsed, fresh} {
		if err := db.Commit(ctx, link.Change{Session: s}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.Sweep(ctx, t0, 100); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v; want no session deleted", n, err)
	}
	got, err := db.Session(ctx, "lapsed")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 0 || !got.Lapse.IsZero() || !got.SecretsLapsed {
		t.Errorf("lapsed answers kept: %q until %v, lapsed %v", got.Secrets, got.Lapse, got.SecretsLapsed)
	}
	if !bytes.Equal(got.Data, lapsed.Data) || got.Phone != lapsed.Phone || !got.Purge.Equal(lapsed.Purge) || !got.Updated.Equal(lapsed.Updated) {
		t.Errorf("scrubbing changed the rest of the session")
	}
	if still, _ := db.Session(ctx, "fresh"); typed(t, still)["password"] != "sealed-fresh" || still.SecretsLapsed {
		t.Errorf("answers within their lifetime were erased: %q, lapsed %v", still.Secrets, still.SecretsLapsed)
	}
	// The next commit of the scrubbed session moves on normally.
	got.Secrets = secrets(map[string]string{"otp": "999111"})
	got.Lapse = t0.Add(2 * time.Minute)
	if err := db.Commit(ctx, link.Change{Session: got}); err != nil {
		t.Fatal(err)
	}
	if again, _ := db.Session(ctx, "lapsed"); typed(t, again)["otp"] != "999111" || again.SecretsLapsed {
		t.Errorf("answers after scrubbing = %q, lapsed %v", again.Secrets, again.SecretsLapsed)
	}
}

func TestAPhoneIsOnePhoneWithOrWithoutItsPlus(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "phones.db"), newSealer(t, 0x22))
	s := fullRecord("plus")
	s.Phone, s.Updated = "+233244000111", t0
	if err := db.Commit(ctx, link.Change{Session: s, Link: fullLink("acc-plus", "+233244000111", "plus"), LoginFailure: true}); err != nil {
		t.Fatal(err)
	}
	for _, phone := range []string{"+233244000111", "233244000111"} {
		if got, err := db.Latest(ctx, phone); err != nil || got.ID != "plus" {
			t.Errorf("Latest(%s) = %v, %v", phone, got, err)
		}
		if links, err := db.LinksByPhone(ctx, phone); err != nil || len(links) != 1 {
			t.Errorf("LinksByPhone(%s) = %v, %v", phone, links, err)
		}
		if n, err := db.LoginFailures(ctx, phone, t0.Add(-time.Minute)); err != nil || n != 1 {
			t.Errorf("LoginFailures(%s) = %d, %v", phone, n, err)
		}
	}
}
