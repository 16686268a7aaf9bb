package kit

import (
	"reflect"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func TestFunnelCountsMergesEachCounterOnceInKeyOrder(t *testing.T) {
	lagos := time.FixedZone("WAT", 3600)
	a := &link.FunnelEntry{Day: time.Date(2026, 12, 1, 9, 0, 0, 0, lagos), Network: "MTN",
		Reached: []link.FunnelScreen{{Screen: "otp", Seconds: 4}, {Screen: "banks", Seconds: 1}, {Screen: "otp", Seconds: 400}},
		EndedOn: "otp", Reason: "exit"}
	b := &link.FunnelEntry{Day: time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), Network: "Airtel",
		Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 2}}, EndedOn: "banks", Reason: "expired"}
	got := FunnelCounts(a, nil, b)
	type key struct{ by, value, screen string }
	var keys []key
	for _, c := range got {
		keys = append(keys, key{c.By, c.Value, c.Screen})
		if !c.Day.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || c.Day.Location() != time.UTC {
			t.Errorf("%+v: day %v, want 2026-12-01 UTC", c, c.Day)
		}
		if len(c.Seconds) != len(link.FunnelSecondsBounds)+1 {
			t.Errorf("%+v: %d buckets", c, len(c.Seconds))
		}
	}
	want := []key{
		{"", "", "banks"}, {"", "", "otp"},
		{"dialect", "none", "banks"}, {"dialect", "none", "otp"},
		{"institution", "none", "banks"}, {"institution", "none", "otp"},
		{"network", "Airtel", "banks"}, {"network", "MTN", "banks"}, {"network", "MTN", "otp"},
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("counters %v, want %v", keys, want)
	}
	// otp, reached twice by one entry, is one counter holding both.
	otp := got[1]
	if otp.Reached != 2 || otp.Left["exit"] != 2 || otp.Seconds[link.SecondsBucket(4)] != 1 || otp.Seconds[len(otp.Seconds)-1] != 1 {
		t.Errorf("otp = %+v, want reached 2, left exit 2, one in 4s' bucket and one in the last", otp)
	}
	if banks := got[0]; banks.Reached != 2 || !reflect.DeepEqual(banks.Left, map[string]int{"expired": 1}) {
		t.Errorf("banks = %+v, want reached 2, left expired 1", banks)
	}
	if got := FunnelCounts(nil); got != nil {
		t.Errorf("FunnelCounts(nil) = %v, want none", got)
	}
}

func TestFunnelSecondsHasOneBucketPerBoundAndOneMore(t *testing.T) {
	n := len(link.FunnelSecondsBounds) + 1
	last := func(v int) []int { out := make([]int, n); out[n-1] = v; return out }
	tests := []struct {
		name string
		in   []int
		want []int
	}{
		{"none is all empty", nil, make([]int, n)},
		{"a shorter one is padded", []int{1, 2}, append([]int{1, 2}, make([]int, n-2)...)},
		{"a longer one's extra buckets go to its last", append(make([]int, n-1), 1, 2, 3), last(6)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FunnelSeconds(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FunnelSeconds(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFunnelGroupingAcceptsOnlyTheFunnelsGroupings(t *testing.T) {
	for _, by := range link.FunnelGroupings {
		if err := FunnelGrouping(by); err != nil {
			t.Errorf("FunnelGrouping(%q) = %v", by, err)
		}
	}
	for _, by := range []string{"phone", "Network", " "} {
		if err := FunnelGrouping(by); err == nil {
			t.Errorf("FunnelGrouping(%q) accepted", by)
		}
	}
}

func TestFunnelCountsMergesNamesThatOnlyStorageMakesEqual(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	entries := []*link.FunnelEntry{
		{Day: at, Network: "MTN\x00", Reached: []link.FunnelScreen{{Screen: "banks"}}, EndedOn: "banks", Reason: "exit"},
		{Day: at, Network: "MTN", Reached: []link.FunnelScreen{{Screen: "banks"}}, EndedOn: "banks", Reason: "exit\x00"},
	}
	got := FunnelCounts(entries...)
	if len(got) != len(link.FunnelGroupings) {
		t.Fatalf("%d counters, want one per grouping: %+v", len(got), got)
	}
	seconds := make([]int, len(link.FunnelSecondsBounds)+1)
	seconds[link.SecondsBucket(0)] = 2
	for _, c := range got {
		if c.Reached != 2 || !reflect.DeepEqual(c.Left, map[string]int{"exit": 2}) || !reflect.DeepEqual(c.Seconds, seconds) {
			t.Errorf("%s counter %+v, want reached 2, left exit 2, both in the first bucket", c.By, c)
		}
		if c.By == link.FunnelNetwork && c.Value != "MTN" {
			t.Errorf("network %q, want MTN", c.Value)
		}
	}
}

// BenchmarkFunnelCounts is the work of an ending session's commit: its
// entry's counters, merged and ordered.
func BenchmarkFunnelCounts(b *testing.B) {
	e := &link.FunnelEntry{Day: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Network: "MTN", Dialect: "africastalking",
		Institution: "gtbank", EndedOn: "done", Reason: "linked"}
	for _, s := range []string{"banks", "username", "password", "otp", "account", "done"} {
		e.Reached = append(e.Reached, link.FunnelScreen{Screen: s, Seconds: 3})
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(FunnelCounts(e)) != 24 {
			b.Fatal("want 24 counters")
		}
	}
}

func TestSumCountersAddsListsUpWithoutChangingThem(t *testing.T) {
	ended := entries(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	var lists, before [][]link.FunnelCount
	for _, e := range ended {
		lists = append(lists, FunnelCounts(e))
		before = append(before, deepCopy(FunnelCounts(e)))
	}
	got := SumCounters(lists...)
	for i := range lists {
		if !reflect.DeepEqual(lists[i], before[i]) {
			t.Fatalf("list %d changed:\n%+v\nwas\n%+v", i, lists[i], before[i])
		}
	}
	if want := FunnelCounts(ended...); !reflect.DeepEqual(got, want) {
		t.Fatalf("SumCounters =\n%+v\nwant what FunnelCounts gives of the entries at once\n%+v", got, want)
	}
	if got := SumCounters(nil, lists[0], nil); !reflect.DeepEqual(got, before[0]) {
		t.Errorf("SumCounters of one list and empty ones =\n%+v\nwant the list\n%+v", got, before[0])
	}
	if got := SumCounters(); len(got) != 0 {
		t.Errorf("SumCounters() = %v, want none", got)
	}
}

// entries are ended sessions sharing some counters and not others, some
// of them (Airtel's, zenith's) first met after the first list.
func entries(day time.Time) []*link.FunnelEntry {
	var out []*link.FunnelEntry
	for _, e := range []struct {
		network, bank string
		seconds       int
	}{{"MTN", "gtb", 4}, {"Airtel", "gtb", 400}, {"MTN", "zenith", 4}, {"Airtel", "zenith", 4}} {
		out = append(out, &link.FunnelEntry{Day: day, Network: e.network, Institution: e.bank,
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 1}, {Screen: "otp", Seconds: e.seconds}}, EndedOn: "otp", Reason: "exit"})
	}
	return out
}

// deepCopy copies counts with their histograms and reasons.
func deepCopy(counts []link.FunnelCount) []link.FunnelCount {
	out := make([]link.FunnelCount, len(counts))
	for i, c := range counts {
		c.Seconds = append([]int(nil), c.Seconds...)
		if c.Left != nil {
			left := make(map[string]int, len(c.Left))
			for r, n := range c.Left {
				left[r] = n
			}
			c.Left = left
		}
		out[i] = c
	}
	return out
}
