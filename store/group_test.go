package store

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openGroup opens a bare bbolt file with its committer.
func openGroup(t *testing.T) (*bolt.DB, *group) {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "group.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("k")); return err }); err != nil {
		t.Fatal(err)
	}
	return b, newGroup(b, 0)
}

// put is a write of key k.
func put(k string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket([]byte("k")).Put([]byte(k), []byte("v")) }
}

// stored reports whether key k is in the file.
func stored(t *testing.T, b *bolt.DB, k string) bool {
	t.Helper()
	found := false
	b.View(func(tx *bolt.Tx) error { found = tx.Bucket([]byte("k")).Get([]byte(k)) != nil; return nil })
	return found
}

// queued waits until n writes are queued behind the committer.
func queued(g *group, n int) {
	for {
		g.mu.Lock()
		l := len(g.queue)
		g.mu.Unlock()
		if l >= n {
			return
		}
		runtime.Gosched()
	}
}

// hold starts a write that holds the committer until release is closed,
// and returns the channel its answer comes on.
func hold(g *group, started chan<- struct{}, release <-chan struct{}) <-chan error {
	answer := make(chan error, 1)
	go func() {
		answer <- g.do(func(tx *bolt.Tx) error {
			close(started)
			<-release
			return nil
		})
	}()
	return answer
}

func TestWritesQueuedDuringACommitShareTheNextTransaction(t *testing.T) {
	_, g := openGroup(t)
	defer g.close()
	started, release := make(chan struct{}), make(chan struct{})
	first := hold(g, started, release)
	<-started
	const n = 5
	ids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.do(func(tx *bolt.Tx) error { ids[i] = tx.ID(); return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	queued(g, n)
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatalf("writes queued together ran in transactions %v", ids)
		}
	}
}

func TestAFailingWriteFailsAloneAndItsGroupIsCommitted(t *testing.T) {
	b, g := openGroup(t)
	defer g.close()
	refused := errors.New("refused")
	tests := []struct {
		name string
		bad  func(*bolt.Tx) error
		want string
	}{
		{"an error", func(tx *bolt.Tx) error { put("bad")(tx); return refused }, "refused"},
		{"a panic", func(tx *bolt.Tx) error { put("bad")(tx); panic("bug") }, "panicked: bug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started, release := make(chan struct{}), make(chan struct{})
			first := hold(g, started, release)
			<-started
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i, fn := range []func(*bolt.Tx) error{put(tt.name + "a"), tt.bad, put(tt.name + "b")} {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = g.do(fn) }()
				queued(g, i+1)
			}
			close(release)
			wg.Wait()
			<-first
			if errs[0] != nil || errs[2] != nil {
				t.Fatalf("the good writes failed: %v", errs)
			}
			if errs[1] == nil || !strings.Contains(errs[1].Error(), tt.want) {
				t.Fatalf("the bad write answered %v, want %q", errs[1], tt.want)
			}
			if !stored(t, b, tt.name+"a") || !stored(t, b, tt.name+"b") {
				t.Fatal("the good writes are not stored")
			}
			if stored(t, b, "bad") {
				t.Fatal("the failed write's put is stored")
			}
		})
	}
}

func TestCloseCommitsWhatIsQueuedAndRefusesLaterWrites(t *testing.T) {
	b, g := openGroup(t)
	started, release := make(chan struct{}), make(chan struct{})
	first := hold(g, started, release)
	<-started
	queuedErr := make(chan error, 1)
	go func() { queuedErr <- g.do(put("queued")) }()
	queued(g, 1)
	closed := make(chan struct{})
	go func() { g.close(); close(closed) }()
	close(release)
	<-closed
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-queuedErr; err != nil || !stored(t, b, "queued") {
		t.Fatalf("the queued write: %v, stored %v", err, stored(t, b, "queued"))
	}
	if err := g.do(put("late")); !errors.Is(err, errClosed) {
		t.Fatalf("a write after close: %v", err)
	}
}

func TestTheWriterCountsItsGroupsWritesAndTimeSpentCommitting(t *testing.T) {
	_, g := openGroup(t)
	started, release := make(chan struct{}), make(chan struct{})
	first := hold(g, started, release)
	<-started
	held := time.Now()
	const n = 5
	answers := make(chan error, n)
	for i := range n {
		go func() { answers <- g.do(put(strings.Repeat("k", i+1))) }()
	}
	queued(g, n)
	heldFor := time.Since(held)
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-answers; err != nil {
			t.Fatal(err)
		}
	}
	g.close() // the committer has returned: its counts are final

	db := &DB{writes: g}
	got := db.WriterStats()
	if got.Groups != 2 || got.Writes != n+1 {
		t.Errorf("WriterStats = %d groups, %d writes; want 2 groups (the held write, then the five queued behind it), %d writes", got.Groups, got.Writes, n+1)
	}
	if got.Busy < heldFor {
		t.Errorf("busy %v, want at least the %v the first write held the writer", got.Busy, heldFor)
	}
}
