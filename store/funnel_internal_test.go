package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
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
