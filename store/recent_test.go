package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
)

// The writes of concurrent transactions mark recent as they are made and
// report their commits in any order: what it answers must be the newest
// committed, never an older report arriving late, never a write not yet
// (or never) committed; what it cannot vouch for is read from the file.
func TestRecentKeepsTheNewestCommittedRecord(t *testing.T) {
	pend := func(tx uint64) recentEntry { return recentEntry{tx: tx, pending: true} }
	commit := func(data string, tx uint64) recentEntry {
		if data == "" {
			return recentEntry{tx: tx} // a deletion
		}
		return recentEntry{data: []byte(data), tx: tx}
	}
	tests := []struct {
		name    string
		reports []recentEntry // in the order they arrive, for session "s"
		want    []byte        // nil with known: deleted
		known   bool
	}{
		{"one write", []recentEntry{pend(5), commit("a", 5)}, []byte("a"), true},
		{"writes in order", []recentEntry{pend(5), commit("a", 5), pend(6), commit("b", 6)}, []byte("b"), true},
		{"a write not yet committed", []recentEntry{pend(5), commit("a", 5), pend(6)}, nil, false},
		{"an older commit reported after a newer write began", []recentEntry{pend(5), pend(6), commit("a", 5)}, nil, false},
		{"an older commit reported last", []recentEntry{pend(5), pend(6), commit("b", 6), commit("a", 5)}, []byte("b"), true},
		{"a write rolled back", []recentEntry{pend(5), commit("a", 5), pend(6)}, nil, false},
		{"deleted", []recentEntry{pend(5), commit("a", 5), pend(7), commit("", 7)}, nil, true},
		{"a write older than the deletion reported late", []recentEntry{pend(5), pend(7), commit("", 7), commit("a", 5)}, nil, true},
		{"written again after the deletion", []recentEntry{pend(7), commit("", 7), pend(8), commit("c", 8)}, []byte("c"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRecent()
			for _, r := range tt.reports {
				if r.pending {
					c.pend("s", r.tx)
				} else {
					c.set("s", r.data, r.tx)
				}
			}
			got, known := c.get("s")
			if known != tt.known || !bytes.Equal(got, tt.want) {
				t.Errorf("get = %q, %v; want %q, %v", got, known, tt.want, tt.known)
			}
		})
	}
}

func TestRecentForgetsWhenFullAndThenIgnoresWhatItCannotOrder(t *testing.T) {
	c := newRecent()
	for i := range recentMax {
		c.set(string(rune('a'+i%26))+string(rune(i)), []byte("x"), uint64(i+1))
	}
	c.set("late", []byte("old"), 3)        // full: everything up to tx recentMax is forgotten
	c.set("s", []byte("stale"), 10)        // older than what was forgotten: may be out of date
	c.set("new", []byte("n"), recentMax+1) // newer: kept
	if _, known := c.get("s"); known {
		t.Error("a report from before the forgetting was kept: it may hide a newer write that was forgotten")
	}
	if got, known := c.get("new"); !known || string(got) != "n" {
		t.Errorf("get(new) = %q, %v", got, known)
	}
	if len(c.m) > recentMax {
		t.Errorf("%d entries kept, bound %d", len(c.m), recentMax)
	}
}

func TestRecentHandsOutCopies(t *testing.T) {
	c := newRecent()
	c.set("s", []byte("abc"), 1)
	got, _ := c.get("s")
	got[0] = 'X'
	if again, _ := c.get("s"); string(again) != "abc" {
		t.Errorf("a reader's change reached the record: %q", again)
	}
}

// Session reads what was committed, from recent or the file alike: a
// write whose transaction rolled back is never read, a deletion is.
func TestSessionReadsOnlyWhatWasCommitted(t *testing.T) {
	db := openInternal(t, 0x2A)
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rec := func(data string) *link.SessionRecord {
		return &link.SessionRecord{ID: "s1", Phone: "+2348030000001", Updated: now, Purge: now.Add(time.Hour), Data: []byte(data)}
	}
	read := func() string {
		t.Helper()
		got, err := db.Session(ctx, "s1")
		if errors.Is(err, link.ErrNoSession) {
			return "none"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(got.Data)
	}
	if err := db.Commit(ctx, link.Change{Session: rec("one")}); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "one" {
		t.Fatalf("after a commit: %q", got)
	}

	forged, err := db.encodeSession(rec("rolled back"))
	if err != nil {
		t.Fatal(err)
	}
	errRollback := errors.New("rolled back")
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := sessionsOf(tx, db.recent).put([]byte("s1"), forged); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if got := read(); got != "one" {
		t.Errorf("after a rolled-back write: %q, want the committed %q", got, "one")
	}

	if err := db.Commit(ctx, link.Change{Session: rec("two")}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Sweep(ctx, now.Add(2*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if got := read(); got != "none" {
		t.Errorf("after the sweep: %q, want none", got)
	}

	if err := db.Commit(ctx, link.Change{Session: rec("three")}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Session(ctx, "s1"); err == nil {
		t.Error("Session read a remembered record after Close")
	}
}

// openInternal opens a new store in a test's directory, with a sealer of
// a fixed key, closed when the test ends: for the tests that look inside.
func openInternal(t testing.TB, fill byte) *DB {
	t.Helper()
	sealer, err := seal.New(bytes.Repeat([]byte{fill}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(filepath.Join(t.TempDir(), "ussdlink.db"), sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSwapReturnsTheRecordItReplaced(t *testing.T) {
	db := openInternal(t, 0x52)
	swap := func(tx *bolt.Tx, record string) string {
		t.Helper()
		prev, err := sessionsOf(tx, nil).swap([]byte("s1"), []byte(record))
		if err != nil {
			t.Fatal(err)
		}
		return string(prev) // read after the Put, as putSession reads it
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if prev := swap(tx, "first"); prev != "" {
			t.Errorf("a new session replaced %q, want nothing", prev)
		}
		// The leaf is already written in this transaction.
		if prev := swap(tx, "second"); prev != "first" {
			t.Errorf("in the same transaction, replaced %q, want first", prev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		// The leaf is the file's page.
		if prev := swap(tx, "third"); prev != "second" {
			t.Errorf("in the next transaction, replaced %q, want second", prev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
