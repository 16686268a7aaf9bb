// Package funnel turns the store's daily funnel counters into the report
// operators and partners read: per screen, in journey order, how many
// sessions reached it, how many left there (and why), the share that went
// on, the median time spent on it, and the completion rate — for every
// session, or grouped by network, dialect or institution. It reads
// counters only; it names no phone, session or account.
package funnel

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// Linked is the screen whose reaching counts as completion.
const Linked = "linked"

// Report is the funnel over the counters since a day.
type Report struct {
	Since  time.Time `json:"since"`
	By     string    `json:"by,omitempty"`
	Groups []Group   `json:"groups"`
}

// Group is the funnel of one grouping value (all sessions when By is
// empty).
type Group struct {
	Value          string   `json:"value,omitempty"`
	Sessions       int      `json:"sessions"`
	Completed      int      `json:"completed"`
	CompletionRate float64  `json:"completion_rate"`
	Screens        []Screen `json:"screens"`
}

// Screen is one screen's line of the funnel.
type Screen struct {
	Screen        string         `json:"screen"`
	Reached       int            `json:"reached"`
	Left          int            `json:"left"`
	LeftBy        map[string]int `json:"left_by,omitempty"`
	WentOn        float64        `json:"went_on"`        // share of those who reached it that did not end there
	MedianSeconds float64        `json:"median_seconds"` // from the counters' buckets
}

// Build makes the report from counters of one grouping. order is the
// journey's screen order (menus.TheJourney); screens it does not name
// come after, by name.
func Build(counts []link.FunnelCount, order []string, since time.Time, by string) Report {
	type key struct{ value, screen string }
	sum := map[key]*link.FunnelCount{}
	values := map[string]bool{}
	for _, c := range counts {
		k := key{c.Value, c.Screen}
		if sum[k] == nil {
			sum[k] = &link.FunnelCount{Screen: c.Screen, Value: c.Value}
		}
		sum[k].Add(c)
		values[c.Value] = true
	}
	rank := func(s string) int {
		if i := slices.Index(order, s); i >= 0 {
			return i
		}
		return len(order)
	}
	r := Report{Since: since.UTC(), By: by}
	for _, v := range slices.Sorted(maps.Keys(values)) {
		g := Group{Value: v}
		var screens []*link.FunnelCount
		for k, c := range sum {
			if k.value == v {
				screens = append(screens, c)
			}
		}
		sort.Slice(screens, func(i, j int) bool {
			a, b := rank(screens[i].Screen), rank(screens[j].Screen)
			if a != b {
				return a < b
			}
			return screens[i].Screen < screens[j].Screen
		})
		for _, c := range screens {
			s := Screen{Screen: c.Screen, Reached: c.Reached, LeftBy: c.Left, MedianSeconds: Median(c.Seconds)}
			for _, n := range c.Left {
				s.Left += n
			}
			if s.Reached > 0 {
				s.WentOn = float64(s.Reached-s.Left) / float64(s.Reached)
			}
			g.Sessions += s.Left // every session ends on exactly one screen
			if c.Screen == Linked {
				g.Completed = c.Reached
			}
			g.Screens = append(g.Screens, s)
		}
		if g.Sessions > 0 {
			g.CompletionRate = float64(g.Completed) / float64(g.Sessions)
		}
		r.Groups = append(r.Groups, g)
	}
	return r
}

// Median reads the median from a seconds histogram over
// link.FunnelSecondsBounds, interpolated within its bucket; the last,
// open bucket answers its lower bound.
func Median(buckets []int) float64 {
	total := 0
	for _, n := range buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	half := float64(total) / 2
	seen := 0.0
	lower := 0.0
	for i, n := range buckets {
		if i >= len(link.FunnelSecondsBounds) {
			return lower
		}
		upper := float64(link.FunnelSecondsBounds[i])
		if seen+float64(n) >= half && n > 0 {
			return lower + (upper-lower)*(half-seen)/float64(n)
		}
		seen += float64(n)
		lower = upper
	}
	return lower
}

// Write prints r in format: "text" (a table per group), "csv" (one row per
// group and screen) or "json".
func (r Report) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "csv":
		return r.csv(w)
	case "text", "":
		return r.text(w)
	}
	return fmt.Errorf("funnel: format must be text, csv or json, not %q", format)
}

// text prints a table per group.
func (r Report) text(w io.Writer) error {
	if len(r.Groups) == 0 {
		_, err := fmt.Fprintf(w, "no ended sessions since %s\n", r.Since.Format(time.DateOnly))
		return err
	}
	for i, g := range r.Groups {
		if i > 0 {
			fmt.Fprintln(w)
		}
		title := "all sessions"
		if r.By != "" {
			title = r.By + " " + g.Value
		}
		fmt.Fprintf(w, "%s since %s: %d sessions, %d linked, completion %.1f%%\n", title, r.Since.Format(time.DateOnly),
			g.Sessions, g.Completed, 100*g.CompletionRate)
		tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "screen\treached\tleft\twent on\tmedian s\tleft by\t")
		for _, s := range g.Screens {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\t%.1f\t%s\t\n", s.Screen, s.Reached, s.Left, 100*s.WentOn, s.MedianSeconds, reasons(s.LeftBy))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// csv prints one row per group and screen.
func (r Report) csv(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"by", "value", "screen", "reached", "left", "went_on", "median_seconds", "left_by", "sessions", "completion_rate"})
	for _, g := range r.Groups {
		for _, s := range g.Screens {
			_ = cw.Write([]string{r.By, g.Value, s.Screen, strconv.Itoa(s.Reached), strconv.Itoa(s.Left),
				strconv.FormatFloat(s.WentOn, 'f', 4, 64), strconv.FormatFloat(s.MedianSeconds, 'f', 1, 64),
				reasons(s.LeftBy), strconv.Itoa(g.Sessions), strconv.FormatFloat(g.CompletionRate, 'f', 4, 64)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// reasons prints departures by reason, most first: "exit 3; failed 1".
func reasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + strconv.Itoa(m[k])
	}
	return strings.Join(parts, "; ")
}

// ParseSince reads how far back to look: a number of days ("7d"), a Go
// duration ("36h"), or a date ("2026-11-01").
func ParseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n >= 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want days (7d), a duration (36h) or a date (2026-11-01)", s)
}
