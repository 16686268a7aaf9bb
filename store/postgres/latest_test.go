package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// pointerWrites counts the statements g saw that write a phone's latest
// session.
func (g *laneGate) pointerWrites() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, b := range g.batches {
		n += statements(b, "INSERT INTO phone_sessions")
	}
	return n
}

func TestAHopLeavesThePhonesRowAloneWhenItsSessionIsItsLatestAlready(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	g := newLaneGate()
	db := openLane(t, url, g)
	admin := adminConn(t, url)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	const phone, other = "+2348031110077", "+2348031110078"
	steps := []struct {
		name       string
		id, phone  string
		elsewhere  bool // the session's lock is held elsewhere at first: the hop reads off the lane
		wantWrite  bool // the phone's row is written
		wantLatest map[string]string
	}{
		{"a session's first hop makes it its phone's latest", "pl-01", phone, false, true, map[string]string{phone: "pl-01"}},
		{"its next hop leaves the phone's row alone", "pl-01", phone, false, false, map[string]string{phone: "pl-01"}},
		{"so does a hop read off the lane", "pl-01", phone, true, false, map[string]string{phone: "pl-01"}},
		{"another session of the phone becomes its latest", "pl-02", phone, false, true, map[string]string{phone: "pl-02"}},
		{"a hop of the first one, no longer the latest, is again", "pl-01", phone, false, true, map[string]string{phone: "pl-01"}},
		{"and the same off the lane", "pl-02", phone, true, true, map[string]string{phone: "pl-02"}},
		{"a hop that moves its session to another phone makes it that phone's latest", "pl-02", other, false, true,
			map[string]string{other: "pl-02"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.elsewhere {
				if _, err := admin.Exec(ctx, lockSQL, sessionLockKey(st.id)); err != nil {
					t.Fatal(err)
				}
			}
			before := g.pointerWrites()
			at = at.Add(time.Second)
			done := make(chan error, 1)
			go func() {
				hctx, unlock, err := db.Locks().LockSession(context.Background(), st.id)
				if err != nil {
					done <- err
					return
				}
				defer unlock()
				if _, err := db.Session(hctx, st.id); err != nil && !errors.Is(err, link.ErrNoSession) {
					done <- err
					return
				}
				r := laneRecord(st.id, at)
				r.Phone = st.phone
				done <- db.Commit(hctx, link.Change{Session: r})
			}()
			if st.elsewhere {
				waitFor(t, "the hop to wait for its session off the lane", func() bool { return waiting(t, admin) })
				if _, err := admin.Exec(ctx, unlockSQL, sessionLockKey(st.id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if wrote := g.pointerWrites() > before; wrote != st.wantWrite {
				t.Errorf("the phone's row written: %v, want %v", wrote, st.wantWrite)
			}
			for p, want := range st.wantLatest {
				if got, err := db.Latest(ctx, p); err != nil || got.ID != want {
					t.Errorf("Latest(%s) = %+v, %v; want %s", p, got, err, want)
				}
			}
		})
	}
}
