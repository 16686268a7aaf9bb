package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ussdlink/ussdlink/store/postgres"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
)

// instances opens n stores on one database, as n gateways would, each
// connecting as application "instance-<i>" (see kill).
func instances(t *testing.T, n int) (dbs []*postgres.DB, kill func(i int)) {
	t.Helper()
	url := pgtest.URL(t)
	dbs = make([]*postgres.DB, n)
	for i := range dbs {
		db, err := postgres.Open(context.Background(), fmt.Sprintf("%s&application_name=instance-%d", url, i), sealer(t, 1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	// kill drops every connection of instance i, as the server sees an
	// instance killed with -9: its sessions end, and their locks with them.
	kill = func(i int) {
		t.Helper()
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(),
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, fmt.Sprintf("instance-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return dbs, kill
}

func TestASessionLockIsHeldByOneInstanceAtATime(t *testing.T) {
	dbs, _ := instances(t, 2)
	a, b := dbs[0].Locks(), dbs[1].Locks()
	ctx := context.Background()
	unlock, err := a.LockContext(ctx, "session:1")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = b.LockContext(short, "session:1")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second instance took a held lock: %v", err)
	}
	other, err := b.LockContext(ctx, "session:2")
	if err != nil {
		t.Fatalf("another session's lock waited on the first: %v", err)
	}
	other()
	got := make(chan func(), 1)
	go func() {
		u, err := b.LockContext(ctx, "session:1")
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	unlock()
	(<-got)()
}

func TestALockDiesWithItsInstance(t *testing.T) {
	dbs, kill := instances(t, 2)
	ctx := context.Background()
	held, err := dbs[0].Locks().LockContext(ctx, "session:9")
	if err != nil {
		t.Fatal(err)
	}
	defer held()
	kill(0) // the instance is gone: its connections, and its locks, with it
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unlock, err := dbs[1].Locks().LockContext(wait, "session:9")
	if err != nil {
		t.Fatalf("the lock of a dead instance was not let go: %v", err)
	}
	unlock()
}

func TestOneInstanceLeadsTheHousekeeping(t *testing.T) {
	dbs, kill := instances(t, 3)
	ctx := context.Background()
	leaders := []*postgres.Leader{dbs[0].Leader(), dbs[1].Leader(), dbs[2].Leader()}
	t.Cleanup(func() { // before the stores close: a held lead keeps a connection
		for _, l := range leaders {
			if l != nil {
				l.Resign()
			}
		}
	})
	lead := func() []int {
		var out []int
		for i, l := range leaders {
			if l == nil {
				continue
			}
			if ok, err := l.Lead(ctx); err != nil {
				t.Fatal(err)
			} else if ok {
				out = append(out, i)
			}
		}
		return out
	}
	if got := lead(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("leaders = %v, want the first to ask alone", got)
	}
	if got := lead(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("leaders on the next round = %v, want the same one", got)
	}
	if err := leaders[0].Resign(); err != nil {
		t.Fatal(err)
	}
	leaders[0] = nil // it stopped
	if got := lead(); len(got) != 1 {
		t.Fatalf("after the leader resigned: leaders = %v, want another one alone", got)
	}
	first := lead()[0]
	kill(first) // the leader dies; the server lets its lock go once it sees the connection end
	var now []int
	for deadline := time.Now().Add(5 * time.Second); len(now) == 0 && time.Now().Before(deadline); {
		for i, l := range leaders {
			if i == first || l == nil {
				continue
			}
			if ok, _ := l.Lead(ctx); ok {
				now = append(now, i)
			}
		}
	}
	if len(now) != 1 {
		t.Fatalf("after the leader died: leaders = %v, want another one alone", now)
	}
	if ok, _ := leaders[first].Lead(ctx); ok {
		t.Errorf("the dead leader still leads")
	}
}

func TestAWorkLeaseIsHeldByOneOwnerUntilItLapses(t *testing.T) {
	dbs, _ := instances(t, 2)
	ctx := context.Background()
	a, b := dbs[0].Leases(), dbs[1].Leases()
	hold := func(l *postgres.Leases, owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := l.Hold(ctx, "job:1", owner, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !hold(a, "A", time.Minute) {
		t.Fatal("a free lease was not taken")
	}
	if !hold(a, "A", time.Minute) {
		t.Fatal("the owner could not renew its lease")
	}
	if hold(b, "B", time.Minute) {
		t.Fatal("another owner took a live lease")
	}
	if err := a.Release(ctx, "job:1", "A"); err != nil {
		t.Fatal(err)
	}
	if !hold(b, "B", time.Millisecond) {
		t.Fatal("a released lease was not taken")
	}
	deadline := time.Now().Add(5 * time.Second) // the database's clock must pass the 1ms lease
	for !hold(a, "A", time.Minute) {
		if time.Now().After(deadline) {
			t.Fatal("a lapsed lease was never taken over")
		}
	}
	if hold(b, "B", time.Minute) {
		t.Fatal("the lapsed owner took its lease back from the new one")
	}
}
