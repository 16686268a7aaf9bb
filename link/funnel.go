package link

import (
	"sort"
	"time"
)

// FunnelEntry is one ended session as the drop-off funnel counts it: the
// screens it showed (in the order first reached, with the seconds spent
// on each), the screen it ended on and why, and what it is grouped by. It
// names no phone, session or account.
type FunnelEntry struct {
	Day         time.Time // the UTC day of the session's last hop
	Dialect     string
	Network     string
	Institution string // the bank chosen, if any
	Reached     []FunnelScreen
	EndedOn     string // the last screen shown before the end
	Reason      string // why it ended: a conversation's reason, "closed" or "expired"
}

// FunnelScreen is one screen a session showed and the seconds the user
// spent on it.
type FunnelScreen struct {
	Screen  string
	Seconds int
}

// Groupings of the funnel's counters: every entry adds to all four.
const (
	FunnelAll         = ""
	FunnelNetwork     = "network"
	FunnelDialect     = "dialect"
	FunnelInstitution = "institution"
)

// FunnelGroupings lists them, for checks.
var FunnelGroupings = []string{FunnelAll, FunnelNetwork, FunnelDialect, FunnelInstitution}

// FunnelSecondsBounds are the upper bounds (inclusive) of the buckets the
// seconds spent on a screen are counted in; one more bucket takes the rest.
// Medians are read from them.
var FunnelSecondsBounds = []int{1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180, 300}

// FunnelCount is one counter: for one day, one grouping (By, and its
// Value) and one screen, how many sessions reached the screen, how many
// ended there by reason, and a histogram of the seconds spent on it
// (len(FunnelSecondsBounds)+1 buckets).
type FunnelCount struct {
	Day     time.Time
	By      string
	Value   string
	Screen  string
	Reached int
	Left    map[string]int
	Seconds []int
}

// Key is the counter's identity: day, grouping, value, screen.
func (c FunnelCount) Key() string {
	return c.Day.UTC().Format(time.DateOnly) + "\x00" + c.By + "\x00" + c.Value + "\x00" + c.Screen
}

// Add adds d's counts into c (same key).
func (c *FunnelCount) Add(d FunnelCount) {
	c.Reached += d.Reached
	for r, n := range d.Left {
		if c.Left == nil {
			c.Left = map[string]int{}
		}
		c.Left[r] += n
	}
	if len(c.Seconds) < len(d.Seconds) {
		c.Seconds = append(c.Seconds, make([]int, len(d.Seconds)-len(c.Seconds))...)
	}
	for i, n := range d.Seconds {
		c.Seconds[i] += n
	}
}

// SecondsBucket is the bucket of FunnelSecondsBounds that s falls in.
func SecondsBucket(s int) int {
	return sort.SearchInts(FunnelSecondsBounds, s)
}

// Counts are the increments e adds: one per screen reached, in every
// grouping. The screen it ended on counts its reason as a departure.
func (e FunnelEntry) Counts() []FunnelCount {
	d := e.Day.UTC()
	day := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	groups := [][2]string{{FunnelAll, ""}, {FunnelNetwork, orNone(e.Network)}, {FunnelDialect, orNone(e.Dialect)},
		{FunnelInstitution, orNone(e.Institution)}}
	n := len(FunnelSecondsBounds) + 1
	out := make([]FunnelCount, 0, len(groups)*len(e.Reached))
	seconds := make([]int, cap(out)*n) // every count's histogram, in one allocation
	for _, g := range groups {
		for _, s := range e.Reached {
			i := len(out) * n
			c := FunnelCount{Day: day, By: g[0], Value: g[1], Screen: s.Screen, Reached: 1,
				Seconds: seconds[i : i+n : i+n]}
			c.Seconds[SecondsBucket(max(s.Seconds, 0))] = 1
			if s.Screen == e.EndedOn {
				c.Left = map[string]int{orNone(e.Reason): 1}
			}
			out = append(out, c)
		}
	}
	return out
}

// orNone names an empty grouping value.
func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}
