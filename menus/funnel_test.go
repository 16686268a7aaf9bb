package menus

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ussdlink/ussdlink/link"
)

// funnelStore is a memStore that keeps the funnel entries committed.
type funnelStore struct {
	*memStore
	fmu     sync.Mutex
	entries []*link.FunnelEntry
}

func (f *funnelStore) Commit(ctx context.Context, c link.Change) error {
	f.fmu.Lock()
	for _, e := range []*link.FunnelEntry{c.Funnel, c.RetiredFunnel} {
		if e != nil {
			f.entries = append(f.entries, e)
		}
	}
	f.fmu.Unlock()
	return f.memStore.Commit(ctx, c)
}

func funnelRig(t *testing.T) (*rig, *funnelStore) {
	r := newRig(t)
	fs := &funnelStore{memStore: r.store}
	r.engine = r.restart(fs)
	return r, fs
}

func funnelHop(t *testing.T, r *rig, session, phone, network, transcript string) link.Reply {
	t.Helper()
	rep, err := r.engine.Handle(context.Background(), link.Hop{SessionID: session, Phone: phone, ServiceCode: "*384*123#",
		Network: network, Transcript: transcript, Cumulative: true})
	if err != nil {
		t.Fatalf("hop %q: %v", transcript, err)
	}
	return rep
}

// The funnel's counters have no retention: a caller posting callbacks
// with made-up network codes must not create a new set of counters per
// code: only known networks, and the operator's, are groups of their own.
func TestFunnelNetworksAreBounded(t *testing.T) {
	r, fs := funnelRig(t)
	for i := range 300 {
		phone := fmt.Sprintf("+234803%07d", i)
		network := fmt.Sprintf("x%d", i)
		funnelHop(t, r, "s"+phone, phone, network, "")
		funnelHop(t, r, "s"+phone, phone, network, "0") // exit on the banks
	}
	seen := map[string]bool{}
	for _, e := range fs.entries {
		seen[e.Network] = true
	}
	if len(seen) > 64 {
		t.Errorf("%d distinct funnel network values from %d sessions: the counters grow without bound", len(seen), len(fs.entries))
	}
}

// A conversation resumed twice must still count each screen once: one
// session reaching "resume" is one reach, not two.
func TestResumedTwiceCountsEachScreenOnce(t *testing.T) {
	r, _ := funnelRig(t)
	phone := "+2348031112222"
	funnelHop(t, r, "a", phone, "mtn", "")
	if rep := funnelHop(t, r, "a", phone, "mtn", "1"); rep.Screen != StateCredentials {
		t.Fatalf("after bank 1: %+v, want credentials", rep)
	}
	// Dropped. Dial again, continue; dropped again; dial again, continue.
	for _, s := range []string{"b", "c"} {
		if rep := funnelHop(t, r, s, phone, "mtn", ""); rep.Screen != StateResume {
			t.Fatalf("%s first hop: %+v, want the resume offer", s, rep)
		}
		if rep := funnelHop(t, r, s, phone, "mtn", "1"); rep.Screen != StateCredentials {
			t.Fatalf("%s continue: %+v, want credentials", s, rep)
		}
	}
	s := r.store.stored(t, "c")
	e := s.funnelEntry(ReasonExit, r.clock.Now(), nil)
	reached := map[string]int{}
	for _, v := range e.Reached {
		reached[v.Screen]++
	}
	for screen, n := range reached {
		if n > 1 {
			t.Errorf("one conversation reached %q %d times in its funnel entry (%+v)", screen, n, e.Reached)
		}
	}
}

// A user who dropped on the login form and chose "Start over" on the
// resume offer dropped off on the login form: that must be counted
// somewhere (the retired session, or the new one), not vanish.
func TestStartOverStillCountsTheDroppedConversation(t *testing.T) {
	r, fs := funnelRig(t)
	phone := "+2348033334444"
	funnelHop(t, r, "a", phone, "mtn", "")
	funnelHop(t, r, "a", phone, "mtn", "1") // the login form; then dropped
	if rep := funnelHop(t, r, "b", phone, "mtn", ""); rep.Screen != StateResume {
		t.Fatalf("first hop: %+v, want the resume offer", rep)
	}
	funnelHop(t, r, "b", phone, "mtn", "2")   // start over
	funnelHop(t, r, "b", phone, "mtn", "2*0") // exit on the banks
	counted := false
	for _, e := range fs.entries {
		for _, v := range e.Reached {
			counted = counted || v.Screen == StateCredentials
		}
	}
	rec, err := record(r.store.stored(t, "a"), false)
	if err != nil {
		t.Fatal(err)
	}
	if e := SweptFunnel(nil)(rec); e != nil {
		counted = true
	}
	if !counted {
		t.Errorf("the conversation that dropped on %q is in no funnel entry, committed or swept: entries %+v", StateCredentials, fs.entries)
	}
}

func TestASessionThatPredatesTheFunnelIsNotCounted(t *testing.T) {
	old := &Session{ID: "old", Phone: "+234801", State: StateLinked, Reason: ReasonLinked} // stored before sessions noted their screens
	rec, err := record(old, false)
	if err != nil {
		t.Fatal(err)
	}
	if e := SweptFunnel(nil)(rec); e != nil {
		t.Errorf("an old linked session swept = %+v, want no entry (it would count a lone linked)", e)
	}
}
