package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// A commit shares its transaction with others, and is run again when one
// of them fails: its funnel counts must be added once all the same.
func TestACommitRunAgainAfterItsGroupFailedCountsItsFunnelOnce(t *testing.T) {
	db := openInternal(t, 0x17)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ended := &link.FunnelEntry{Day: at, Dialect: "hubtel", Network: "MTN", Institution: "gtb",
		Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 2}, {Screen: "otp", Seconds: 7}}, EndedOn: "otp", Reason: "exit"}
	started, release := make(chan struct{}), make(chan struct{})
	held := hold(db.writes, started, release)
	<-started
	committed := make(chan error, 1)
	go func() {
		committed <- db.Commit(context.Background(), link.Change{Funnel: ended,
			Session: &link.SessionRecord{ID: "s1", Phone: "+2348030000001", Updated: at, Purge: at.Add(time.Hour), Data: []byte(`{}`)}})
	}()
	queued(db.writes, 1)
	refused := make(chan error, 1)
	go func() { refused <- db.writes.do(func(*bolt.Tx) error { return errors.New("refused") }) }()
	queued(db.writes, 2)
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := <-refused; err == nil {
		t.Fatal("the refused write succeeded")
	}
	if err := <-committed; err != nil {
		t.Fatalf("Commit: %v", err)
	}
	counts, err := db.FunnelCounts(context.Background(), at, link.FunnelAll)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range counts {
		if c.Reached != 1 {
			t.Errorf("screen %s reached %d times, want once", c.Screen, c.Reached)
		}
	}
	if len(counts) != 2 {
		t.Errorf("FunnelCounts = %+v, want two screens", counts)
	}
}

// groupOf queues fns behind a held committer and releases it, so that
// they share one transaction (as far as none fails), and returns each
// one's answer, in order.
func groupOf(t *testing.T, db *DB, fns ...func() error) []error {
	t.Helper()
	started, release := make(chan struct{}), make(chan struct{})
	held := hold(db.writes, started, release)
	<-started
	answers := make([]chan error, len(fns))
	for i, fn := range fns {
		answers[i] = make(chan error, 1)
		go func() { answers[i] <- fn() }()
		queued(db.writes, i+1)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	errs := make([]error, len(fns))
	for i, a := range answers {
		errs[i] = <-a
	}
	return errs
}

// endingCommit is the commit of a session s ending with e.
func endingCommit(db *DB, s string, e *link.FunnelEntry) func() error {
	return func() error {
		return db.Commit(context.Background(), link.Change{Funnel: e,
			Session: &link.SessionRecord{ID: s, Phone: "+2348030000001", Updated: e.Day, Purge: e.Day.Add(time.Hour), Data: []byte(`{}`)}})
	}
}

// The commits of one group add their funnel counts together, once per
// counter: each commit's counts are in the sum once, and a commit run
// again after its group failed adds its own once more, as they were.
func TestTheCommitsOfAGroupAddTheirFunnelCountsOnceEach(t *testing.T) {
	db := openInternal(t, 0x18)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	entry := func(otpSeconds int, reason string) *link.FunnelEntry {
		return &link.FunnelEntry{Day: at, Dialect: "hubtel", Network: "MTN", Institution: "gtb",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 2}, {Screen: "otp", Seconds: otpSeconds}}, EndedOn: "otp", Reason: reason}
	}
	errs := groupOf(t, db,
		endingCommit(db, "s1", entry(7, "exit")),
		func() error { return db.writes.do(func(*bolt.Tx) error { return errors.New("refused") }) },
		endingCommit(db, "s2", entry(7, "expired")),
		endingCommit(db, "s3", entry(400, "exit")))
	if errs[1] == nil {
		t.Fatal("the refused write succeeded")
	}
	for _, i := range []int{0, 2, 3} {
		if errs[i] != nil {
			t.Fatalf("commit %d: %v", i, errs[i])
		}
	}
	for _, by := range link.FunnelGroupings {
		counts, err := db.FunnelCounts(context.Background(), at, by)
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 2 {
			t.Fatalf("%q: %+v, want two screens", by, counts)
		}
		banks, otp := counts[0], counts[1]
		if banks.Reached != 3 || banks.Seconds[link.SecondsBucket(2)] != 3 || banks.Left != nil {
			t.Errorf("%q banks = %+v, want reached 3, all in 2 s's bucket, none left", by, banks)
		}
		if otp.Reached != 3 || otp.Seconds[link.SecondsBucket(7)] != 2 || otp.Seconds[len(otp.Seconds)-1] != 1 ||
			!sameCounts(otp.Left, map[string]int{"exit": 2, "expired": 1}) {
			t.Errorf("%q otp = %+v, want reached 3, two in 7 s's bucket and one in the last, left exit 2 and expired 1", by, otp)
		}
	}
}

// A counter that cannot be read fails the commits that add to it, and
// only them: the commits beside them in the group are added and stored.
func TestAnUnreadableCounterFailsOnlyTheCommitsAddingToIt(t *testing.T) {
	db := openInternal(t, 0x19)
	bad, good := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	entry := func(day time.Time) *link.FunnelEntry {
		return &link.FunnelEntry{Day: day, Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 2}}, EndedOn: "banks", Reason: "exit"}
	}
	spoilt := link.FunnelCount{Day: bad, By: link.FunnelAll, Screen: "banks"}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFunnel).Put(funnelKey(spoilt), []byte{0x7f}) }); err != nil {
		t.Fatal(err)
	}
	errs := groupOf(t, db, endingCommit(db, "s1", entry(good)), endingCommit(db, "s2", entry(bad)),
		endingCommit(db, "s3", entry(good)), endingCommit(db, "s4", entry(bad)))
	for i, want := range []bool{false, true, false, true} {
		if failed := errors.Is(errs[i], errFunnelRecord); failed != want {
			t.Errorf("commit %d answered %v; want it failed on the counter: %v", i, errs[i], want)
		}
	}
	for s, want := range map[string]bool{"s1": true, "s2": false, "s3": true, "s4": false} {
		if _, err := db.Session(context.Background(), s); (err == nil) != want {
			t.Errorf("session %s: %v; want it stored: %v", s, err, want)
		}
	}
	counts, err := db.FunnelCounts(context.Background(), good, link.FunnelAll)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 || counts[0].Reached != 2 || counts[0].Seconds[link.SecondsBucket(2)] != 2 || counts[0].Left["exit"] != 2 {
		t.Errorf("the good day's counts = %+v, want banks reached twice, both in 2 s's bucket, both left", counts)
	}
}

// When the group's funnel sum meets a counter that cannot be read, the
// write whose own counts hold it is the one run alone: the writes beside
// it run again together, once.
func TestTheWriteWhoseCountsMeetAnUnreadableCounterIsTheOneRunAlone(t *testing.T) {
	db := openInternal(t, 0x1a)
	bad, good := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	spoilt := link.FunnelCount{Day: bad, By: link.FunnelAll, Screen: "banks"}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFunnel).Put(funnelKey(spoilt), []byte{0x7f}) }); err != nil {
		t.Fatal(err)
	}
	// Read only after every answer came: each write's last run is before it.
	runs := make([]int, 3)
	adding := func(i int, day time.Time) func() error {
		counts := kit.FunnelCounts(&link.FunnelEntry{Day: day, Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 2}}, EndedOn: "banks", Reason: "exit"})
		return func() error {
			return db.writes.doCounting(func(*bolt.Tx) error { runs[i]++; return nil }, counts)
		}
	}
	errs := groupOf(t, db, adding(0, good), adding(1, bad), adding(2, good))
	for i, want := range []bool{false, true, false} {
		if failed := errors.Is(errs[i], errFunnelRecord); failed != want {
			t.Errorf("write %d answered %v; want it failed on the counter: %v", i, errs[i], want)
		}
	}
	if want := []int{2, 2, 2}; !sameInts(runs, want) {
		t.Errorf("the writes ran %v times, want %v: all together, then the one adding to the counter alone, the others together", runs, want)
	}
}

func TestAStoredFunnelCounterReadsBackAsWritten(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	seconds := make([]int, len(link.FunnelSecondsBounds)+1)
	seconds[0], seconds[len(seconds)-1] = 3, 1<<40
	tests := []struct {
		name string
		c    link.FunnelCount
	}{
		{"a screen no session ended on", link.FunnelCount{Day: day, By: link.FunnelNetwork, Value: "MTN", Screen: "banks", Reached: 4, Seconds: seconds}},
		{"a screen sessions ended on for reasons", link.FunnelCount{Day: day, By: link.FunnelAll, Screen: "otp", Reached: 9,
			Left: map[string]int{"exit": 2, "": 1, "expired\x01": 1 << 33}, Seconds: seconds}},
		{"names holding the keys' separator's neighbours", link.FunnelCount{Day: day, By: link.FunnelInstitution, Value: "bank\x01", Screen: "x\xff", Seconds: seconds}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeFunnel(funnelKey(tt.c), encodeFunnel(tt.c))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Day.Equal(tt.c.Day) || got.By != tt.c.By || got.Value != tt.c.Value || got.Screen != tt.c.Screen ||
				got.Reached != tt.c.Reached || !sameCounts(got.Left, tt.c.Left) || !sameInts(got.Seconds, tt.c.Seconds) {
				t.Errorf("read back %+v, want %+v", got, tt.c)
			}
		})
	}
}

func TestAMalformedFunnelCounterIsAnError(t *testing.T) {
	c := link.FunnelCount{Day: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), Screen: "otp", Reached: 2,
		Left: map[string]int{"exit": 1}, Seconds: make([]int, len(link.FunnelSecondsBounds)+1)}
	good := encodeFunnel(c)
	tests := []struct {
		name string
		k, v []byte
	}{
		{"an empty value", funnelKey(c), nil},
		{"an unknown format", funnelKey(c), append([]byte{0x7f}, good[1:]...)},
		{"a value cut short", funnelKey(c), good[:len(good)-2]},
		{"a value with bytes after it", funnelKey(c), append(bytes.Clone(good), 0)},
		{"a key without its day", []byte("\x00otp"), good},
		{"a key whose day is no date", []byte("\x002026-13-01\x00\x00otp"), good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := decodeFunnel(tt.k, tt.v); !errors.Is(err, errFunnelRecord) {
				t.Errorf("decodeFunnel = %+v, %v; want errFunnelRecord", got, err)
			}
		})
	}
}

// sameCounts reports whether two reason counts hold the same, nil and
// empty alike.
func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sameInts reports whether two histograms are equal.
func sameInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkFunnelOfAGroup is what the committer does for the funnel
// counts of eight sessions ending in one group commit, as loadgen's flows
// end (six screens, in four groupings): each commit's counts added on their
// own, as before, and the group's summed first (addFunnels). Each
// transaction is rolled back: the disk is not measured. Run with -benchmem.
func BenchmarkFunnelOfAGroup(b *testing.B) {
	db := openInternal(b, 0x20)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var lists [][]link.FunnelCount
	for i := range 8 {
		lists = append(lists, kit.FunnelCounts(&link.FunnelEntry{Day: at, Dialect: "africastalking", Network: "62130", Institution: "GTBank",
			Reached: []link.FunnelScreen{{Screen: "language", Seconds: 1}, {Screen: "banks", Seconds: 1}, {Screen: "username", Seconds: 2},
				{Screen: "password", Seconds: 3}, {Screen: "accounts", Seconds: 2 + i%2}, {Screen: "linked", Seconds: 0}},
			EndedOn: "linked", Reason: "linked"}))
	}
	// The counters exist, as they do a minute into a day.
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return addFunnel(tx, kit.SumCounters(lists...)) }); err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		add  func(*bolt.Tx) error
	}{
		{"each", func(tx *bolt.Tx) error {
			for _, l := range lists {
				if err := addFunnel(tx, l); err != nil {
					return err
				}
			}
			return nil
		}},
		{"summed", func(tx *bolt.Tx) error {
			ws := make([]*write, len(lists))
			for i, l := range lists {
				ws[i] = &write{funnel: l}
			}
			_, err := addFunnels(tx, ws)
			return err
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tx, err := db.bolt.Begin(true)
				if err != nil {
					b.Fatal(err)
				}
				if err := tt.add(tx); err != nil {
					b.Fatal(err)
				}
				tx.Rollback()
			}
		})
	}
}
