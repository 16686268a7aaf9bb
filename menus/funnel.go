package menus

import (
	"slices"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// The drop-off funnel. Each session notes the screens its hops showed and
// the seconds spent on each; when it ends, its entry is committed with it
// (Engine.commit), and a session abandoned or closed by the aggregator is
// counted when the sweeper deletes it (SweptFunnel). A resumed session's
// conversation goes on in the session that resumed it, which inherits its
// screens: the conversation is counted once, when it ends.

// Reasons of sessions counted when swept.
const (
	funnelClosed  = "closed"  // the aggregator ended it (the user hung up, the network timed out)
	funnelExpired = "expired" // the user stopped answering
)

// shown notes that the hop's reply shows the session's state at now: the
// time since the last screen was shown is spent on it. An END without a
// link is not a step of the journey: the screen before it is where the
// session ended.
func (s *Session) shown(now time.Time) {
	if s.Shown != "" && !s.ShownAt.IsZero() {
		s.spend(s.Shown, now.Sub(s.ShownAt))
	}
	s.ShownAt = now
	if s.State == StateEnded || s.State == s.Shown {
		return
	}
	s.Shown = s.State
	for _, v := range s.Visits {
		if v.Screen == s.State {
			return
		}
	}
	s.Visits = append(s.Visits, Visit{Screen: s.State})
}

// mergeVisits is a resumed conversation's screens: the dropped session's,
// then this one's, each screen once, with its seconds added up.
func mergeVisits(prev, cur []Visit) []Visit {
	out := make([]Visit, 0, len(prev)+len(cur))
	for _, v := range append(append([]Visit(nil), prev...), cur...) {
		i := slices.IndexFunc(out, func(o Visit) bool { return o.Screen == v.Screen })
		if i < 0 {
			out = append(out, v)
			continue
		}
		out[i].Seconds += v.Seconds
	}
	return out
}

// spend adds d to the seconds spent on screen.
func (s *Session) spend(screen string, d time.Duration) {
	for i := range s.Visits {
		if s.Visits[i].Screen == screen {
			s.Visits[i].Seconds += int(max(d, 0) / time.Second)
			return
		}
	}
}

// funnelEntry is the session's entry, ended for reason, with the last
// screen's time counted up to until; networks are those the operator
// names besides the known ones.
func (s *Session) funnelEntry(reason string, until time.Time, networks []string) *link.FunnelEntry {
	if len(s.Visits) == 0 {
		return nil // it never showed a screen (or predates the funnel): nothing to count
	}
	f := *s
	f.Visits = append([]Visit(nil), s.Visits...)
	if f.Shown != "" && !f.ShownAt.IsZero() {
		f.spend(f.Shown, until.Sub(f.ShownAt))
	}
	if f.State == StateLinked && f.Shown != StateLinked {
		f.Visits = append(f.Visits, Visit{Screen: StateLinked}) // linked in the background: done all the same
		f.Shown = StateLinked
	}
	e := &link.FunnelEntry{Day: until.UTC(), Dialect: f.Dialect, Network: link.NetworkLabel(f.Network, networks), EndedOn: f.Shown, Reason: reason}
	if f.Bank != nil {
		e.Institution = f.Bank.ID
	}
	for _, v := range f.Visits {
		e.Reached = append(e.Reached, link.FunnelScreen{Screen: v.Screen, Seconds: v.Seconds})
	}
	return e
}

// count decides the funnel entry a commit of s carries: one when s ended
// and was not counted yet. A session another resumed is not counted: its
// conversation continues there; one a user started over from ends where
// they dropped it.
func (s *Session) count(now time.Time, networks []string) *link.FunnelEntry {
	if !s.Done() || s.Counted {
		return nil
	}
	s.Counted = true
	if s.Reason == ReasonResumed {
		return nil
	}
	return s.funnelEntry(s.Reason, now, networks)
}

// SweptFunnel is the store's hook (link.FunnelOf) for the sessions the
// sweeper deletes: nil for one counted already; an abandoned session ends
// "closed" when the aggregator ended it, "expired" otherwise, on the last
// screen shown. networks are those the operator names (Config.Networks).
func SweptFunnel(networks []string) link.FunnelOf {
	return func(rec *link.SessionRecord) *link.FunnelEntry {
		var s Session
		if decodeData(rec.Data, &s) != nil || s.Counted {
			return nil
		}
		if s.Done() {
			return s.count(s.Updated, networks)
		}
		reason := funnelExpired
		if s.Closed != "" {
			reason = funnelClosed
		}
		return s.funnelEntry(reason, s.Updated, networks)
	}
}
