package kit

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ussdlink/ussdlink/link"
)

// FunnelCounts merges the increments of entries (a nil one adds nothing)
// into one per counter, sorted by grouping, day, value and screen: the
// order both backends key their counters in. A backend adds them in that
// order, so two transactions adding to the same counters at once take
// their locks in one order and never deadlock; and PostgreSQL's one upsert
// of them all never meets a counter twice. Days are UTC midnights, names are
// made what both backends can key (valid UTF-8, without NUL: PostgreSQL's
// text holds neither), and each histogram has FunnelSeconds' length.
func FunnelCounts(entries ...*link.FunnelEntry) []link.FunnelCount {
	var out []link.FunnelCount
	for _, e := range entries {
		if e == nil {
			continue
		}
		counts := e.Counts() // fresh: cleaned in place, and the first kept
		for i := range counts {
			counts[i] = cleanCount(counts[i])
		}
		if out == nil {
			out = counts
		} else {
			out = append(out, counts...)
		}
	}
	return SortCounters(out)
}

// MergeCounters sums the counts of one counter that lie side by side in
// counts, sorted by counter (grouping, day, value, screen: as FunnelCounts
// returns them, and as a backend reads a counter kept in several rows),
// into the first of them, in place, and returns what is left.
func MergeCounters(counts []link.FunnelCount) []link.FunnelCount {
	merged := counts[:0]
	for _, c := range counts {
		if n := len(merged); n > 0 && compareCounters(merged[n-1], c) == 0 {
			merged[n-1].Add(c)
			continue
		}
		merged = append(merged, c)
	}
	return merged
}

// SortCounters sorts counts by counter, as FunnelCounts returns them, and
// sums the counts of one counter into one, in place: sorted, a counter's
// increments lie side by side, merged in one pass with no map of the
// counters seen.
func SortCounters(counts []link.FunnelCount) []link.FunnelCount {
	slices.SortFunc(counts, compareCounters)
	return MergeCounters(counts)
}

// SumCounters adds up lists of counts, each as FunnelCounts returned it
// (sorted by counter, each counter once), into one per counter in the
// same order, leaving the lists as they were: a counter met in more than
// one gets a histogram and reasons of its own. The bbolt store's
// committer sums the funnel counts of a group of commits with it, so that
// a counter several commits add to is read and written once per
// transaction; a commit run again after its group failed adds its own
// lists once more, unchanged. One list is handed back as it is. The sum may share histograms and reasons
// with the lists: it is not to be changed. The lists are merged one into
// the sum after the other, each in one pass: they are sorted already, and
// mostly of the same counters.
func SumCounters(lists ...[]link.FunnelCount) []link.FunnelCount {
	if len(lists) == 1 {
		return lists[0]
	}
	var sum, next []link.FunnelCount
	var own, nextOwn []bool // whether sum[i]'s histogram and reasons are its own
	for _, l := range lists {
		next, nextOwn = next[:0], nextOwn[:0]
		i, j := 0, 0
		for i < len(sum) || j < len(l) {
			order := -1 // sum[i] first
			switch {
			case i == len(sum):
				order = 1
			case j < len(l):
				order = compareCounters(sum[i], l[j])
			}
			switch {
			case order < 0:
				next, nextOwn = append(next, sum[i]), append(nextOwn, own[i])
				i++
			case order > 0:
				next, nextOwn = append(next, l[j]), append(nextOwn, false)
				j++
			default:
				c := sum[i]
				if !own[i] {
					c.Seconds, c.Left = slices.Clone(c.Seconds), maps.Clone(c.Left)
				}
				c.Add(l[j])
				next, nextOwn = append(next, c), append(nextOwn, true)
				i, j = i+1, j+1
			}
		}
		sum, next = next, sum
		own, nextOwn = nextOwn, own
	}
	return sum
}

// compareCounters orders counts by their counter: grouping, day, value,
// screen.
func compareCounters(a, b link.FunnelCount) int {
	return cmp.Or(strings.Compare(a.By, b.By), a.Day.Compare(b.Day), strings.Compare(a.Value, b.Value),
		strings.Compare(a.Screen, b.Screen))
}

// cleanCount is c as stored: its day a UTC midnight, its names keyable,
// its histogram of FunnelSeconds' length. Its maps and slices are those
// of c when they are already so (c comes fresh from FunnelEntry.Counts),
// copies otherwise.
func cleanCount(c link.FunnelCount) link.FunnelCount {
	out := link.FunnelCount{Day: FunnelDay(c.Day), By: c.By, Value: keyable(c.Value), Screen: keyable(c.Screen),
		Reached: c.Reached, Seconds: c.Seconds, Left: c.Left}
	if len(c.Seconds) != len(link.FunnelSecondsBounds)+1 {
		out.Seconds = FunnelSeconds(c.Seconds)
	}
	for r := range c.Left {
		if keyable(r) != r {
			out.Left = make(map[string]int, len(c.Left))
			for r, n := range c.Left {
				out.Left[keyable(r)] += n
			}
			break
		}
	}
	return out
}

// keyable is s as both backends can store it: valid UTF-8, without NUL.
func keyable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s // as nearly every name is: no copy
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// FunnelDay is the UTC day t falls on, as its midnight: the day counters
// are kept by, and the first a read since t returns.
func FunnelDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// FunnelSeconds is a histogram of seconds with one bucket per
// link.FunnelSecondsBounds and one more: a shorter one (kept under fewer
// bounds) is padded with empty buckets, a longer one's extra buckets are
// counted in its last. It is always a copy.
func FunnelSeconds(s []int) []int {
	n := len(link.FunnelSecondsBounds) + 1
	out := make([]int, n)
	for i, v := range s {
		out[min(i, n-1)] += v
	}
	return out
}

// FunnelGrouping checks that by is one of link.FunnelGroupings.
func FunnelGrouping(by string) error {
	if !slices.Contains(link.FunnelGroupings, by) {
		return fmt.Errorf("unknown funnel grouping %q (want one of %q)", by, link.FunnelGroupings)
	}
	return nil
}
