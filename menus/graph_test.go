package menus

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/looplab/fsm"
)

func TestTheDrawnJourneyIsTheMachineTheEngineRuns(t *testing.T) {
	j := TheJourney()
	drawn := map[JourneyEdge]bool{}
	edge := regexp.MustCompile(`^    (\w+) --> (\w+): (\w+)$`)
	for _, line := range strings.Split(j.Mermaid(), "\n") {
		if m := edge.FindStringSubmatch(line); m != nil && m[3] != "dial" {
			drawn[JourneyEdge{From: m[1], Event: m[3], To: m[2]}] = true
		}
	}
	// Every event the engine's machine accepts in every state is drawn,
	// going where the machine goes, and nothing else is.
	accepted := map[JourneyEdge]bool{}
	for _, s := range j.States {
		if s.Screen == "" {
			t.Errorf("state %s shows no screen", s.Name)
		}
		for _, ev := range allEvents() {
			m := fsm.NewFSM(s.Name, transitions, nil) // the engine's transitions, without its callbacks
			if !m.Can(ev) {
				continue
			}
			if err := m.Event(context.Background(), ev); err != nil && !errors.As(err, new(fsm.NoTransitionError)) {
				t.Fatalf("%s in %s: %v", ev, s.Name, err)
			}
			accepted[JourneyEdge{From: s.Name, Event: ev, To: m.Current()}] = true
		}
	}
	for e := range accepted {
		if !drawn[e] {
			t.Errorf("the machine takes %s from %s to %s; the graph does not show it", e.Event, e.From, e.To)
		}
	}
	for e := range drawn {
		if !accepted[e] {
			t.Errorf("the graph shows %s from %s to %s; the machine does not take it", e.Event, e.From, e.To)
		}
	}
	if len(drawn) == 0 || !strings.Contains(j.Dot(), `"banks" -> "methods" [label="choose_bank"]`) {
		t.Errorf("graph drew %d edges; dot:\n%s", len(drawn), j.Dot())
	}
}

// allEvents lists every event name the transitions use.
func allEvents() []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range transitions {
		if !seen[t.Name] {
			seen[t.Name] = true
			out = append(out, t.Name)
		}
	}
	return out
}
