package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// FunnelOf is the suite's funnel hook (store.WithFunnel): a session the
// sweeper deletes counts the entry its Data holds under "funnel", and
// nothing when it holds none. Shown a record's secrets, which the funnel
// never needs, it says so in the entry's reason, for the suite to see.
// Open every backend handed to Run with it.
func FunnelOf(rec *link.SessionRecord) *link.FunnelEntry {
	var data struct {
		Funnel *link.FunnelEntry `json:"funnel"`
	}
	if json.Unmarshal(rec.Data, &data) != nil || data.Funnel == nil {
		return nil
	}
	if len(rec.Secrets) > 0 {
		data.Funnel.Reason = secretsShown
	}
	return data.Funnel
}

// secretsShown is the reason FunnelOf gives an entry when the record it
// was handed carried its secrets.
const secretsShown = "the hook was shown the session's secrets"

// withFunnel makes r's data hold e, for FunnelOf to find when r is swept.
func withFunnel(r *link.SessionRecord, e *link.FunnelEntry) *link.SessionRecord {
	data, err := json.Marshal(map[string]any{"state": "abandoned", "funnel": e})
	if err != nil {
		panic(err)
	}
	r.Data = data
	return r
}

// entry is a session's funnel entry on day: it went through screens (name,
// seconds, …) and ended on the last of them for reason.
func entry(day time.Time, network, institution, reason string, screens ...any) *link.FunnelEntry {
	e := &link.FunnelEntry{Day: day, Dialect: "africastalking", Network: network, Institution: institution, Reason: reason}
	for i := 0; i+1 < len(screens); i += 2 {
		e.Reached = append(e.Reached, link.FunnelScreen{Screen: screens[i].(string), Seconds: screens[i+1].(int)})
	}
	if len(e.Reached) > 0 {
		e.EndedOn = e.Reached[len(e.Reached)-1].Screen
	}
	return e
}

// counter is the counter a read must return: histogram holds seconds
// spent, one per session, each counted in its bucket.
func counter(day time.Time, by, value, screen string, reached int, left map[string]int, seconds ...int) link.FunnelCount {
	c := link.FunnelCount{Day: day, By: by, Value: value, Screen: screen, Reached: reached, Left: left,
		Seconds: make([]int, len(link.FunnelSecondsBounds)+1)}
	for _, s := range seconds {
		c.Seconds[link.SecondsBucket(s)]++
	}
	return c
}

// expected is what a read of grouping by returns once entries are
// counted: their counts, added up per key, in (day, value, screen) order.
func expected(by string, entries ...*link.FunnelEntry) []link.FunnelCount {
	at := map[string]int{}
	var out []link.FunnelCount
	for _, e := range entries {
		for _, c := range e.Counts() {
			if c.By != by {
				continue
			}
			if i, ok := at[c.Key()]; ok {
				out[i].Add(c)
				continue
			}
			at[c.Key()] = len(out)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b link.FunnelCount) int {
		if d := a.Day.Compare(b.Day); d != 0 {
			return d
		}
		if d := strings.Compare(a.Value, b.Value); d != 0 {
			return d
		}
		return strings.Compare(a.Screen, b.Screen)
	})
	return out
}

// funnelCounts reads grouping by's counters since a time.
func funnelCounts(t *testing.T, s Store, since time.Time, by string) []link.FunnelCount {
	t.Helper()
	got, err := s.FunnelCounts(t.Context(), since, by)
	if err != nil {
		t.Fatalf("FunnelCounts(%q): %v", by, err)
	}
	return got
}

// checkFunnel compares every grouping's counters since a time with what
// entries add up to.
func checkFunnel(t *testing.T, s Store, since time.Time, entries ...*link.FunnelEntry) {
	t.Helper()
	for _, by := range link.FunnelGroupings {
		if got, want := funnelCounts(t, s, since, by), expected(by, entries...); !same(got, want) {
			t.Errorf("FunnelCounts(by %q) =\n%s\nwant\n%s", by, showCounts(got), showCounts(want))
		}
	}
}

// showCounts prints counters one a line.
func showCounts(cs []link.FunnelCount) string {
	if len(cs) == 0 {
		return "  (none)"
	}
	lines := make([]string, 0, len(cs))
	for _, c := range cs {
		lines = append(lines, fmt.Sprintf("  %s %q=%q %s: reached %d, left %v, seconds %v",
			c.Day.Format(time.DateOnly), c.By, c.Value, c.Screen, c.Reached, c.Left, c.Seconds))
	}
	return strings.Join(lines, "\n")
}

// day is the UTC midnight n days after t0's.
func day(n int) time.Time {
	return time.Date(t0.Year(), t0.Month(), t0.Day()+n, 0, 0, 0, 0, time.UTC)
}

func funnelBehaviours() []behaviour {
	return []behaviour{
		each("a change's funnel entry adds its counts, read back by every grouping", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			e := entry(t0, "MTN", "", "exit", "banks", 4, "bank_form", 31)
			mustCommit(t, b.Store, link.Change{Session: record("s1", phone, state{State: "ended"}), Funnel: e})
			mustCommit(t, b.Store, link.Change{Session: record("s2", phone, state{State: "banks"})}) // no entry: nothing
			checkFunnel(t, b.Store, day(0), e)
			// Stated in full once, the grouping by network: two screens,
			// the one the session ended on with its reason.
			want := []link.FunnelCount{
				counter(day(0), link.FunnelNetwork, "MTN", "bank_form", 1, map[string]int{"exit": 1}, 31),
				counter(day(0), link.FunnelNetwork, "MTN", "banks", 1, nil, 4),
			}
			if got := funnelCounts(t, b.Store, day(0), link.FunnelNetwork); !same(got, want) {
				t.Errorf("FunnelCounts(by network) =\n%s\nwant\n%s", showCounts(got), showCounts(want))
			}
			// An entry without an institution counts under "none".
			if got := funnelCounts(t, b.Store, day(0), link.FunnelInstitution); len(got) != 2 || got[0].Value != "none" {
				t.Errorf("FunnelCounts(by institution) =\n%s\nwant two counters of value none", showCounts(got))
			}
		}),
		each("entries on one counter add up: reached, departures by reason, seconds bucket by bucket", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			entries := []*link.FunnelEntry{
				entry(t0, "MTN", "gtb", "exit", "banks", 3, "otp", 10),
				entry(t0.Add(time.Hour), "MTN", "gtb", "expired", "banks", 3, "otp", 100),
				entry(t0, "MTN", "gtb", "exit", "banks", 50),
				entry(t0, "Airtel", "gtb", "exit", "banks", 0),
			}
			for i, e := range entries {
				mustCommit(t, b.Store, link.Change{Session: record(fmt.Sprintf("s%d", i), phone, state{State: "ended"}), Funnel: e})
			}
			want := []link.FunnelCount{
				counter(day(0), link.FunnelAll, "", "banks", 4, map[string]int{"exit": 2}, 3, 3, 50, 0),
				counter(day(0), link.FunnelAll, "", "otp", 2, map[string]int{"exit": 1, "expired": 1}, 10, 100),
			}
			if got := funnelCounts(t, b.Store, day(0), link.FunnelAll); !same(got, want) {
				t.Errorf("FunnelCounts(all) =\n%s\nwant\n%s", showCounts(got), showCounts(want))
			}
			checkFunnel(t, b.Store, day(0), entries...)
		}),
		each("FunnelCounts returns the counters from since's UTC day on", func(t *testing.T, b Backend) {
			const phone = "+2348030000001"
			entries := []*link.FunnelEntry{
				entry(day(-2).Add(23*time.Hour+59*time.Minute), "MTN", "gtb", "exit", "banks", 2),
				entry(day(-1), "MTN", "gtb", "exit", "banks", 2),
				entry(day(0).Add(10*time.Hour), "MTN", "gtb", "exit", "banks", 2),
			}
			for i, e := range entries {
				mustCommit(t, b.Store, link.Change{Session: record(fmt.Sprintf("s%d", i), phone, state{State: "ended"}), Funnel: e})
			}
			lagos, samoa := time.FixedZone("WAT", 3600), time.FixedZone("UTC-2", -2*3600)
			for _, c := range []struct {
				name  string
				since time.Time
				from  int // the first entry counted
			}{
				{"a time before every day", day(-30), 0},
				{"the first day's midnight", day(-2), 0},
				{"the second day's midnight: the first day is left out", day(-1), 1},
				{"late on the second day", day(-1).Add(23 * time.Hour), 1},
				{"early on the second day in a zone ahead of UTC, still the first in UTC", time.Date(t0.Year(), t0.Month(), t0.Day()-1, 0, 30, 0, 0, lagos), 0},
				{"late on the second day in a zone behind UTC, already the third in UTC", time.Date(t0.Year(), t0.Month(), t0.Day()-1, 23, 30, 0, 0, samoa), 2},
				{"a day after every counter", day(1), 3},
			} {
				t.Run(c.name, func(t *testing.T) {
					checkFunnel(t, b.Store, c.since, entries[c.from:]...)
				})
			}
		}),
		each("names no backend can key by are made keyable, not refused", func(t *testing.T, b Backend) {
			e := entry(t0, "MT\x00N", "g\xfftb", "ex\x00it", "ban\x00ks", 3)
			mustCommit(t, b.Store, link.Change{Session: record("s1", "+2348030000001", state{State: "ended"}), Funnel: e})
			for _, c := range []struct {
				by   string
				want link.FunnelCount
			}{
				{link.FunnelNetwork, counter(day(0), link.FunnelNetwork, "MTN", "banks", 1, map[string]int{"exit": 1}, 3)},
				{link.FunnelInstitution, counter(day(0), link.FunnelInstitution, "g\uFFFDtb", "banks", 1, map[string]int{"exit": 1}, 3)},
			} {
				if got := funnelCounts(t, b.Store, day(0), c.by); !same(got, []link.FunnelCount{c.want}) {
					t.Errorf("FunnelCounts(by %q) =\n%s\nwant\n%s", c.by, showCounts(got), showCounts([]link.FunnelCount{c.want}))
				}
			}
		}),
		each("FunnelCounts refuses a grouping that is none of the funnel's", func(t *testing.T, b Backend) {
			for _, by := range []string{"phone", "Network", "none"} {
				if got, err := b.Store.FunnelCounts(t.Context(), day(0), by); err == nil {
					t.Errorf("FunnelCounts(by %q) = %v, nil; want an error", by, got)
				}
			}
		}),
		each("Sweep counts each session it deletes once, as the hook decides, and none not yet due", func(t *testing.T, b Backend) {
			ctx := t.Context()
			const phone = "+2348030000001"
			gone := entry(t0, "MTN", "gtb", "abandoned", "banks", 3, "otp", 40)
			later := entry(t0, "MTN", "gtb", "abandoned", "banks", 5)
			swept := withSecrets(withFunnel(record("gone", phone, state{}), gone), "typed-otp", t0.Add(time.Hour))
			swept.Purge = t0.Add(-time.Minute)
			kept := withFunnel(record("kept", phone, state{}), later) // purged at t0+20m
			uncounted := record("uncounted", phone, state{State: "ended"})
			uncounted.Purge = t0.Add(-time.Minute)
			for _, r := range []*link.SessionRecord{swept, kept, uncounted} {
				mustCommit(t, b.Store, link.Change{Session: r})
			}
			checkFunnel(t, b.Store, day(0)) // committed without an entry: nothing yet
			if n, err := b.Store.Sweep(ctx, t0, 100); err != nil || n != 2 {
				t.Fatalf("Sweep(t0) = %d, %v; want 2", n, err)
			}
			checkFunnel(t, b.Store, day(0), gone)
			if n, err := b.Store.Sweep(ctx, t0, 100); err != nil || n != 0 {
				t.Fatalf("Sweep(t0) again = %d, %v; want 0", n, err)
			}
			checkFunnel(t, b.Store, day(0), gone)
			if n, err := b.Store.Sweep(ctx, far, 100); err != nil || n != 1 {
				t.Fatalf("Sweep(far) = %d, %v; want the one left", n, err)
			}
			checkFunnel(t, b.Store, day(0), gone, later)
		}),
		{name: "a commit that fails adds nothing to the funnel", run: func(t *testing.T, open opener) {
			for _, c := range failingCommits() {
				t.Run(c.name, func(t *testing.T) {
					b := open(t)
					const phone = "+2348030000001"
					cur := record("cur", phone, state{State: "linked"})
					change := link.Change{Session: cur, Link: newLink("acc-1", phone, cur.ID),
						Funnel: entry(t0, "MTN", "gtb", "linked", "banks", 3, "accounts", 8)}
					c.poison(t, b, &change)
					if err := b.Store.Commit(t.Context(), change); err == nil {
						t.Fatal("Commit succeeded; want it to fail")
					}
					checkFunnel(t, b.Store, day(-1))
				})
			}
		}},
		each("commits at once each add their counts", func(t *testing.T, b Backend) {
			const writers = 16
			var entries []*link.FunnelEntry
			for i := range writers {
				// The same counters, in either order of first reach.
				screens := []any{"banks", i, "bank_form", 2 * i}
				if i%2 == 1 {
					screens = []any{"bank_form", 2 * i, "banks", i}
				}
				entries = append(entries, entry(t0, "MTN", "gtb", []string{"exit", "failed"}[i%2], screens...))
			}
			var wg sync.WaitGroup
			errs := make([]error, writers)
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					r := record(fmt.Sprintf("s%02d", i), fmt.Sprintf("+23480300000%02d", i), state{State: "ended"})
					errs[i] = b.Store.Commit(t.Context(), link.Change{Session: r, Funnel: entries[i]})
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			checkFunnel(t, b.Store, day(0), entries...)
		}),
		each("the funnel's counters survive a reopen", func(t *testing.T, b Backend) {
			e := entry(t0, "MTN", "gtb", "exit", "banks", 3, "otp", 12)
			mustCommit(t, b.Store, link.Change{Session: record("s1", "+2348030000001", state{State: "ended"}), Funnel: e})
			b = reopen(t, b)
			checkFunnel(t, b.Store, day(0), e)
		}),
	}
}
