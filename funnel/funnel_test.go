package funnel

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

var day = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

// entries are four sessions: two linked, one left on the login form, one
// abandoned on the bank list.
func entries() []link.FunnelEntry {
	return []link.FunnelEntry{
		{Day: day, Network: "62130", Reason: "linked", EndedOn: "linked",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 4}, {Screen: "credentials", Seconds: 20}, {Screen: "linked", Seconds: 0}}},
		{Day: day, Network: "62120", Reason: "linked", EndedOn: "linked",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 6}, {Screen: "credentials", Seconds: 30}, {Screen: "linked", Seconds: 0}}},
		{Day: day, Network: "62130", Reason: "exit", EndedOn: "credentials",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 5}, {Screen: "credentials", Seconds: 50}}},
		{Day: day.AddDate(0, 0, 1), Network: "62130", Reason: "expired", EndedOn: "banks",
			Reached: []link.FunnelScreen{{Screen: "banks", Seconds: 200}}},
	}
}

// counts are the entries' counters of one grouping.
func counts(by string) []link.FunnelCount {
	var out []link.FunnelCount
	for _, e := range entries() {
		for _, c := range e.Counts() {
			if c.By == by {
				out = append(out, c)
			}
		}
	}
	return out
}

var order = []string{"banks", "methods", "credentials", "challenge", "linked", "ended"}

func TestTheFunnelCountsWhoReachedLeftAndWentOnPerScreen(t *testing.T) {
	r := Build(counts(link.FunnelAll), order, day, "")
	if len(r.Groups) != 1 {
		t.Fatalf("groups = %+v", r.Groups)
	}
	g := r.Groups[0]
	if g.Sessions != 4 || g.Completed != 2 || g.CompletionRate != 0.5 {
		t.Errorf("group = %+v", g)
	}
	want := []struct {
		screen        string
		reached, left int
		wentOn        float64
	}{{"banks", 4, 1, 0.75}, {"credentials", 3, 1, 2.0 / 3}, {"linked", 2, 2, 0}}
	if len(g.Screens) != len(want) {
		t.Fatalf("screens = %+v", g.Screens)
	}
	for i, w := range want {
		s := g.Screens[i]
		if s.Screen != w.screen || s.Reached != w.reached || s.Left != w.left || s.WentOn != w.wentOn {
			t.Errorf("screen %d = %+v, want %+v", i, s, w)
		}
	}
	if g.Screens[0].LeftBy["expired"] != 1 || g.Screens[1].LeftBy["exit"] != 1 {
		t.Errorf("left by = %v, %v", g.Screens[0].LeftBy, g.Screens[1].LeftBy)
	}
	if m := g.Screens[1].MedianSeconds; m < 20 || m > 45 {
		t.Errorf("median on credentials = %v, want between 20 and 45", m)
	}
}

func TestTheFunnelGroupsByNetwork(t *testing.T) {
	r := Build(counts(link.FunnelNetwork), order, day, link.FunnelNetwork)
	if len(r.Groups) != 2 || r.Groups[0].Value != "62120" || r.Groups[1].Value != "62130" {
		t.Fatalf("groups = %+v", r.Groups)
	}
	if g := r.Groups[1]; g.Sessions != 3 || g.Completed != 1 {
		t.Errorf("62130 = %+v", g)
	}
}

func TestMedianReadsTheBuckets(t *testing.T) {
	b := func(at ...int) []int {
		out := make([]int, len(link.FunnelSecondsBounds)+1)
		for _, s := range at {
			out[link.SecondsBucket(s)]++
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		buckets  []int
		lo, high float64
	}{
		{"none", b(), 0, 0},
		{"one at 10 s", b(10), 8, 13},
		{"most quick", b(1, 1, 1, 100), 0, 1},
		{"beyond the last bound", b(1000, 1000, 1000), 300, 300},
	} {
		if m := Median(tt.buckets); m < tt.lo || m > tt.high {
			t.Errorf("%s: median %v, want in [%v, %v]", tt.name, m, tt.lo, tt.high)
		}
	}
}

func TestTheReportPrintsAsTextCSVAndJSON(t *testing.T) {
	r := Build(counts(link.FunnelAll), order, day, "")
	for _, tt := range []struct {
		format string
		want   []string
	}{
		{"text", []string{"all sessions since 2026-11-30: 4 sessions, 2 linked, completion 50.0%", "credentials", "exit 1"}},
		{"csv", []string{"by,value,screen,reached,left,went_on,median_seconds,left_by,sessions,completion_rate", ",,banks,4,1,0.7500"}},
		{"json", []string{`"completion_rate": 0.5`, `"screen": "linked"`}},
	} {
		var buf bytes.Buffer
		if err := r.Write(&buf, tt.format); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(buf.String(), w) {
				t.Errorf("%s lacks %q:\n%s", tt.format, w, buf.String())
			}
		}
		if tt.format == "json" && !json.Valid(buf.Bytes()) {
			t.Errorf("json is not JSON: %s", buf.String())
		}
	}
	if err := r.Write(&bytes.Buffer{}, "xml"); err == nil {
		t.Error("xml accepted")
	}
}

func TestSinceReadsDaysDurationsAndDates(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"7d": now.AddDate(0, 0, -7), "36h": now.Add(-36 * time.Hour), "2026-11-01": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := ParseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "-3d"} {
		if _, err := ParseSince(in, now); err == nil {
			t.Errorf("ParseSince(%q) succeeded", in)
		}
	}
}
