package menus

import (
	"fmt"
	"slices"
	"strings"
)

// Journey is the conversation's state machine as the engine runs it: read
// from the same transitions every session's machine is built from, so the
// drawing cannot drift from the code (`ussdlink graph`).
type Journey struct {
	States []JourneyState
	Edges  []JourneyEdge
}

// JourneyState is one state and the screen it shows.
type JourneyState struct {
	Name   string
	Screen string
}

// JourneyEdge is one event moving a session from one state to another.
type JourneyEdge struct {
	From, Event, To string
}

// screens says what each state shows on the phone.
var screens = map[string]string{
	StateLanguage:    "Choose your language: each in its own name",
	StateBanks:       "Choose bank: numbered, paged (98 More), typed letters filter",
	StateMethods:     "How do you log in? internet or mobile banking",
	StateCredentials: "one prompt per field of the bank's login form",
	StateAccounts:    "Choose the account to link (Mono 101)",
	StateChallenge:   "the bank's OTP or security question (Mono 102)",
	StateWaiting:     "Your bank is still answering: 1 to check again",
	StateResume:      "Continue where you left off? 1 Continue, 2 Start over",
	StateReauth:      "Mono logs in again for a reauthorisation",
	StateLinked:      "END: the account is linked",
	StateEnded:       "END: why the session ended (exit, failure, expiry, lockout)",
}

// TheJourney returns the state machine: every state a transition names,
// in the order of the journey, and every (state, event) edge.
func TheJourney() Journey {
	order := []string{StateLanguage, StateBanks, StateMethods, StateCredentials, StateAccounts, StateChallenge, StateWaiting,
		StateResume, StateReauth, StateLinked, StateEnded}
	var j Journey
	seen := map[string]bool{}
	addState := func(s string) {
		if !seen[s] {
			seen[s] = true
			j.States = append(j.States, JourneyState{Name: s, Screen: screens[s]})
		}
	}
	for _, s := range order {
		addState(s)
	}
	edges := map[JourneyEdge]bool{}
	for _, t := range transitions {
		for _, src := range t.Src {
			addState(src)
			addState(t.Dst)
			e := JourneyEdge{From: src, Event: t.Name, To: t.Dst}
			if !edges[e] {
				edges[e] = true
				j.Edges = append(j.Edges, e)
			}
		}
	}
	rank := func(s string) int {
		if i := slices.Index(order, s); i >= 0 {
			return i
		}
		return len(order)
	}
	slices.SortStableFunc(j.Edges, func(a, b JourneyEdge) int {
		if d := rank(a.From) - rank(b.From); d != 0 {
			return d
		}
		return rank(a.To) - rank(b.To)
	})
	return j
}

// Mermaid draws the journey as a Mermaid state diagram.
func (j Journey) Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s: dial\n", StateBanks)
	for _, s := range j.States {
		fmt.Fprintf(&b, "    %s: %s\\n%s\n", s.Name, s.Name, mermaidText(s.Screen))
	}
	for _, e := range j.Edges {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", e.From, e.To, e.Event)
	}
	fmt.Fprintf(&b, "    %s --> [*]\n    %s --> [*]\n", StateLinked, StateEnded)
	return b.String()
}

// Dot draws the journey in Graphviz's language.
func (j Journey) Dot() string {
	var b strings.Builder
	b.WriteString("digraph journey {\n    rankdir=LR;\n    node [shape=box, style=rounded];\n")
	for _, s := range j.States {
		fmt.Fprintf(&b, "    %q [label=%q];\n", s.Name, s.Name+"\n"+s.Screen)
	}
	for _, e := range j.Edges {
		fmt.Fprintf(&b, "    %q -> %q [label=%q];\n", e.From, e.To, e.Event)
	}
	b.WriteString("}\n")
	return b.String()
}

// mermaidText keeps a screen's description from breaking Mermaid's syntax.
func mermaidText(s string) string {
	return strings.NewReplacer(":", " -", ";", ",", "#", "", "\n", " ").Replace(s)
}
