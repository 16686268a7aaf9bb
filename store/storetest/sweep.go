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

func lockoutBehaviours() []behaviour {
	return []behaviour{
		each("a refused login counts against the phone from its session's update time, with or without its +", func(t *testing.T, b Backend) {
			const phone, longer = "+2348000000001", "+23480000000011" // the first is a prefix of the second
			fail := func(p string, at time.Time) {
				r := record("f-"+p, p, state{State: "credentials"})
				r.Updated = at
				mustCommit(t, b.Store, link.Change{Session: r, LoginFailure: true})
			}
			for range 3 {
				fail(phone, t0) // the same instant, three times
			}
			fail(phone, t0.Add(-time.Hour))
			fail(longer, t0)
			for _, c := range []struct {
				phone string
				since time.Time
				want  int
			}{
				{phone, t0.Add(-lockout), 3},
				{phone[1:], t0.Add(-lockout), 3},
				{phone, t0.Add(-2 * time.Hour), 4},
				{phone, t0, 3}, // since is inclusive
				{phone, t0.Add(time.Microsecond), 0},
				{longer, t0.Add(-2 * time.Hour), 1},
				{"+2348000000002", t0.Add(-2 * time.Hour), 0},
			} {
				if got := failures(t, b.Store, c.phone, c.since); got != c.want {
					t.Errorf("LoginFailures(%s, since t0%+v) = %d, want %d", c.phone, c.since.Sub(t0), got, c.want)
				}
			}
		}),
		each("attempts are reserved up to max since a time, and one refused writes nothing", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348000000001"
			r := record("s1", phone, state{})
			r.Updated = t0.Add(-time.Hour) // a failure from before the lockout window counts for nothing
			mustCommit(t, b.Store, link.Change{Session: r, LoginFailure: true})
			r.Updated = t0
			mustCommit(t, b.Store, link.Change{Session: r, LoginFailure: true})
			since := t0.Add(-lockout)
			keys := map[string]bool{}
			for i, want := range []bool{true, true, false, false} {
				key, ok, err := b.Store.ReserveAttempt(ctx, phone, since, t0.Add(time.Duration(i)*time.Second), 3)
				if err != nil || ok != want {
					t.Fatalf("reservation %d = %v, %v; want %v (max 3, one failure already)", i+1, ok, err, want)
				}
				if ok && (key == "" || keys[key]) {
					t.Fatalf("reservation %d has key %q, want a fresh one", i+1, key)
				}
				keys[key] = true
			}
			if got, want := failures(t, b.Store, phone, since), 3; got != want {
				t.Errorf("LoginFailures = %d, want %d: refused reservations write nothing", got, want)
			}
			if _, ok, err := b.Store.ReserveAttempt(ctx, "+2348000000002", since, t0, 3); err != nil || !ok {
				t.Errorf("another phone's reservation = %v, %v; want it granted", ok, err)
			}
		}),
		each("a released reservation no longer counts, and an unknown key releases nothing", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348000000001"
			since := t0.Add(-lockout)
			var keys []string
			for i := range 3 {
				key, ok, err := b.Store.ReserveAttempt(ctx, phone, since, t0.Add(time.Duration(i)*time.Second), 3)
				if err != nil || !ok {
					t.Fatalf("reservation %d = %v, %v", i+1, ok, err)
				}
				keys = append(keys, key)
			}
			if _, ok, _ := b.Store.ReserveAttempt(ctx, phone, since, t0.Add(time.Minute), 3); ok {
				t.Fatal("a fourth reservation was granted, over max 3")
			}
			// The bank did not refuse the second: its hop releases it.
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Release: []string{keys[1], "not-a-key", "00ff"}})
			if got, want := failures(t, b.Store, phone, since), 2; got != want {
				t.Errorf("LoginFailures after a release = %d, want %d", got, want)
			}
			if _, ok, err := b.Store.ReserveAttempt(ctx, phone, since, t0.Add(time.Minute), 3); err != nil || !ok {
				t.Errorf("a reservation after a release = %v, %v; want it granted", ok, err)
			}
			// Released twice: the second finds nothing to release.
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{}), Release: []string{keys[1]}})
			if got, want := failures(t, b.Store, phone, since), 3; got != want {
				t.Errorf("LoginFailures after releasing a key again = %d, want %d", got, want)
			}
		}),
		each("concurrent reservations never exceed max", func(t *testing.T, b Backend) {
			const phone, n, max = "+2348000000001", 32, 3
			since := t0.Add(-lockout)
			var wg sync.WaitGroup
			start := make(chan struct{})
			granted := make([]bool, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					<-start
					_, granted[i], errs[i] = b.Store.ReserveAttempt(t.Context(), phone, since, t0.Add(time.Duration(i)*time.Microsecond), max)
				})
			}
			close(start)
			wg.Wait()
			got := 0
			for i := range n {
				if errs[i] != nil {
					t.Errorf("ReserveAttempt: %v", errs[i])
				}
				if granted[i] {
					got++
				}
			}
			if got != max {
				t.Errorf("%d of %d concurrent reservations granted, want %d", got, n, max)
			}
			if got := failures(t, b.Store, phone, since); got != max {
				t.Errorf("LoginFailures = %d, want %d", got, max)
			}
		}),
		each("SweepFailures forgets the failures and reservations from before its cut-off, at most max", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348000000001"
			for _, d := range []time.Duration{-2 * time.Hour, -time.Hour, -31 * time.Minute, -lockout, 0} {
				r := record("s1", phone, state{})
				r.Updated = t0.Add(d)
				mustCommit(t, b.Store, link.Change{Session: r, LoginFailure: true})
			}
			if _, ok, err := b.Store.ReserveAttempt(ctx, phone, t0.Add(-3*time.Hour), t0.Add(-45*time.Minute), 10); err != nil || !ok {
				t.Fatalf("ReserveAttempt = %v, %v", ok, err)
			}
			cut := t0.Add(-lockout)
			if n, err := b.Store.SweepFailures(ctx, cut, 3); err != nil || n != 3 {
				t.Fatalf("SweepFailures(max 3) = %d, %v; want 3", n, err)
			}
			if n, err := b.Store.SweepFailures(ctx, cut, 100); err != nil || n != 1 {
				t.Fatalf("SweepFailures again = %d, %v; want the last 1 from before the cut-off", n, err)
			}
			if got, want := failures(t, b.Store, phone, t0.Add(-24*time.Hour)), 2; got != want {
				t.Errorf("LoginFailures after the sweep = %d, want %d (at the cut-off and after)", got, want)
			}
		}),
	}
}

func sweepBehaviours() []behaviour {
	return []behaviour{
		each("Sweep deletes exactly the sessions whose purge time has passed", func(t *testing.T, b Backend) {
			ctx := t.Context()
			purge := map[string]time.Duration{
				"old-1":  -10 * time.Minute,
				"old-2":  -time.Microsecond,
				"due":    0, // due exactly now is kept: purge times are exclusive
				"young":  time.Minute,
				"future": time.Hour,
			}
			for id, d := range purge {
				r := withSecrets(record(id, "+234-"+id, state{}), "sealed-"+id, t0.Add(d))
				r.Purge = t0.Add(d)
				mustCommit(t, b.Store, link.Change{Session: r})
			}
			if n, err := b.Store.Sweep(ctx, t0, 100); err != nil || n != 2 {
				t.Errorf("Sweep = %d, %v; want 2", n, err)
			}
			for id, d := range purge {
				_, err := b.Store.Session(ctx, id)
				if gone := errors.Is(err, link.ErrNoSession); gone != (d < 0) {
					t.Errorf("session %s gone = %v, want %v (%v)", id, gone, d < 0, err)
				}
				_, err = b.Store.Latest(ctx, "+234-"+id)
				if gone := errors.Is(err, link.ErrNoSession); gone != (d < 0) {
					t.Errorf("latest session of %s's phone gone = %v, want %v (%v)", id, gone, d < 0, err)
				}
			}
			if n, err := b.Store.Sweep(ctx, t0, 100); err != nil || n != 0 {
				t.Errorf("a second Sweep = %d, %v; want 0", n, err)
			}
		}),
		each("Sweep deletes at most max sessions, the longest due first", func(t *testing.T, b Backend) {
			ctx := t.Context()
			for i := range 25 {
				r := record(fmt.Sprintf("s%02d", i), fmt.Sprintf("+2348000001%03d", i), state{})
				r.Purge = t0.Add(-time.Duration(i+1) * time.Minute) // s24 is the longest due
				mustCommit(t, b.Store, link.Change{Session: r})
			}
			if n, err := b.Store.Sweep(ctx, t0, 10); err != nil || n != 10 {
				t.Fatalf("Sweep(max 10) = %d, %v; want 10", n, err)
			}
			var kept []string
			for i := range 25 {
				if _, err := b.Store.Session(ctx, fmt.Sprintf("s%02d", i)); err == nil {
					kept = append(kept, fmt.Sprintf("s%02d", i))
				}
			}
			var want []string
			for i := range 15 {
				want = append(want, fmt.Sprintf("s%02d", i))
			}
			if !slices.Equal(kept, want) {
				t.Errorf("after one Sweep(max 10), kept %v; want the 15 due last", kept)
			}
			for _, wantN := range []int{10, 5, 0} {
				if n, err := b.Store.Sweep(ctx, t0, 10); err != nil || n != wantN {
					t.Errorf("Sweep(max 10) = %d, %v; want %d", n, err, wantN)
				}
			}
		}),
		each("a session written again is purged at its new purge time only", func(t *testing.T, b Backend) {
			ctx := t.Context()
			later, sooner := record("later", "+2348000000001", state{}), record("sooner", "+2348000000002", state{})
			later.Purge, sooner.Purge = t0.Add(time.Minute), t0.Add(time.Hour)
			mustCommit(t, b.Store, link.Change{Session: later})
			mustCommit(t, b.Store, link.Change{Session: sooner})
			later.Purge, sooner.Purge = t0.Add(time.Hour), t0.Add(time.Minute) // the next hops move them
			mustCommit(t, b.Store, link.Change{Session: later})
			mustCommit(t, b.Store, link.Change{Session: sooner})
			if n, err := b.Store.Sweep(ctx, t0.Add(10*time.Minute), 100); err != nil || n != 1 {
				t.Errorf("Sweep(t0+10m) = %d, %v; want the one now due at t0+1m", n, err)
			}
			if _, err := b.Store.Session(ctx, "later"); err != nil {
				t.Errorf("a session whose purge time moved later was swept at its old one: %v", err)
			}
			if _, err := b.Store.Session(ctx, "sooner"); !errors.Is(err, link.ErrNoSession) {
				t.Errorf("a session whose purge time moved sooner was kept: %v", err)
			}
		}),
		{name: "Sweep forgets a phone's latest session only when it is the one swept", run: func(t *testing.T, open opener) {
			const phone = "+2348000000001"
			for _, c := range []struct {
				name       string
				order      []string // written in this order: "old" is due, "cur" is not
				wantLatest string   // "" for none
			}{
				{"the latest is not the one swept", []string{"old", "cur"}, "cur"},
				{"the latest is the one swept", []string{"cur", "old"}, ""},
			} {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					for _, id := range c.order {
						r := record(id, phone, state{})
						r.Purge = t0.Add(time.Hour)
						if id == "old" {
							r.Purge = t0.Add(-time.Minute)
						}
						mustCommit(t, b.Store, link.Change{Session: r})
					}
					if n, err := b.Store.Sweep(t.Context(), t0, 10); err != nil || n != 1 {
						t.Fatalf("Sweep = %d, %v; want 1", n, err)
					}
					got, err := b.Store.Latest(t.Context(), phone)
					switch {
					case c.wantLatest == "" && !errors.Is(err, link.ErrNoSession):
						t.Errorf("Latest = %v, %v; want ErrNoSession", show(got), err)
					case c.wantLatest != "" && (err != nil || got.ID != c.wantLatest):
						t.Errorf("Latest = %v, %v; want %s", show(got), err, c.wantLatest)
					}
					if _, err := b.Store.Session(t.Context(), "cur"); err != nil {
						t.Errorf("the session not due was swept: %v", err)
					}
				})
			}
		}},
		each("secrets lapse at their lapse time: erased by Sweep, the record kept", func(t *testing.T, b Backend) {
			ctx := t.Context()
			recs := map[string]*link.SessionRecord{
				"lapsed":  withSecrets(record("lapsed", "+2348000000021", state{Note: "a"}), "sealed-lapsed", t0.Add(-time.Microsecond)),
				"at-now":  withSecrets(record("at-now", "+2348000000022", state{Note: "b"}), "sealed-at-now", t0), // exclusive, like purge times
				"fresh":   withSecrets(record("fresh", "+2348000000023", state{Note: "c"}), "sealed-fresh", t0.Add(time.Minute)),
				"nothing": record("nothing", "+2348000000024", state{Note: "d"}), // nothing sealed: nothing lapses
			}
			recs["nothing"].Lapse = t0.Add(-time.Minute)
			for _, r := range recs {
				r.Purge = t0.Add(time.Hour)
				mustCommit(t, b.Store, link.Change{Session: r})
			}
			if n, err := b.Store.Sweep(ctx, t0, 100); err != nil || n != 0 {
				t.Fatalf("Sweep = %d, %v; want no session deleted", n, err)
			}
			lapsed := *recs["lapsed"]
			lapsed.Secrets, lapsed.Lapse, lapsed.SecretsLapsed = nil, time.Time{}, true
			got := mustSession(t, b.Store, "lapsed")
			if diff := sameRecord(got, &lapsed); diff != "" {
				t.Errorf("the lapsed session: %s", diff)
			}
			for _, id := range []string{"at-now", "fresh", "nothing"} {
				if diff := sameRecord(mustSession(t, b.Store, id), recs[id]); diff != "" {
					t.Errorf("session %s, not lapsed: %s", id, diff)
				}
			}
			// The next commit of the scrubbed session moves on normally.
			withSecrets(got, "typed-again", t0.Add(2*time.Minute))
			mustCommit(t, b.Store, link.Change{Session: got})
			if again := mustSession(t, b.Store, "lapsed"); string(again.Secrets) != "typed-again" || again.SecretsLapsed {
				t.Errorf("secrets after lapsing and typing again = %q, lapsed %v", again.Secrets, again.SecretsLapsed)
			}
		}),
		each("secrets typed into a record that had a lapse time but nothing sealed lapse at that time", func(t *testing.T, b Backend) {
			ctx := t.Context()
			lapse := t0.Add(time.Minute)
			r := record("s1", "+2348000000025", state{})
			r.Purge, r.Lapse = t0.Add(time.Hour), lapse // a lapse time, nothing sealed: nothing to erase yet
			mustCommit(t, b.Store, link.Change{Session: r})
			withSecrets(r, "typed-later", lapse) // the same lapse time, now with secrets
			mustCommit(t, b.Store, link.Change{Session: r})
			if _, err := b.Store.Sweep(ctx, lapse.Add(time.Second), 100); err != nil {
				t.Fatal(err)
			}
			if got := mustSession(t, b.Store, "s1"); len(got.Secrets) != 0 || !got.SecretsLapsed {
				t.Errorf("after their lapse time the secrets are %q (lapsed %v), want erased", got.Secrets, got.SecretsLapsed)
			}
		}),
		each("a record written again lapses at its new lapse time only", func(t *testing.T, b Backend) {
			ctx := t.Context()
			r := withSecrets(record("s1", "+2348000000021", state{}), "first", t0.Add(time.Minute))
			r.Purge = t0.Add(time.Hour)
			mustCommit(t, b.Store, link.Change{Session: r})
			withSecrets(r, "second", t0.Add(10*time.Minute))
			mustCommit(t, b.Store, link.Change{Session: r})
			if _, err := b.Store.Sweep(ctx, t0.Add(5*time.Minute), 100); err != nil {
				t.Fatal(err)
			}
			if got := mustSession(t, b.Store, "s1"); string(got.Secrets) != "second" || got.SecretsLapsed {
				t.Errorf("at the old lapse time, secrets = %q, lapsed %v; want them kept", got.Secrets, got.SecretsLapsed)
			}
			if _, err := b.Store.Sweep(ctx, t0.Add(11*time.Minute), 100); err != nil {
				t.Fatal(err)
			}
			if got := mustSession(t, b.Store, "s1"); len(got.Secrets) != 0 || !got.SecretsLapsed {
				t.Errorf("past the new lapse time, secrets = %q, lapsed %v; want them erased", got.Secrets, got.SecretsLapsed)
			}
		}),
	}
}
