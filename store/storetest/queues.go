package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// queued is one message to queue in a queue test: its id and what it is
// about. Messages about one thing keep their order.
type queued struct {
	id string
	// about names a link (webhooks: its account, or its session when
	// noAccount) or a phone (texts: the last digits of its number).
	about     string
	noAccount bool // webhooks: about a session, with no account yet
	bare      bool // texts: the phone written without its +
}

// queueKind is one of the two durable queues, and how messages get into it.
type queueKind struct {
	name  string
	queue func(b Backend) Queue
	put   func(t *testing.T, b Backend, at time.Time, msgs ...queued)
}

var queueKinds = []queueKind{
	{"webhooks", func(b Backend) Queue { return b.Webhooks }, func(t *testing.T, b Backend, at time.Time, msgs ...queued) {
		t.Helper()
		var events []link.Event
		for _, m := range msgs {
			if m.noAccount {
				events = append(events, event(m.id, link.TypeInstitutionSelected, "", "s-"+m.about, at))
			} else {
				events = append(events, event(m.id, link.TypeAccountLinked, "acc-"+m.about, "s-"+m.id, at))
			}
		}
		// Partner events are queued by the hops that decide them.
		mustCommit(t, b.Store, link.Change{Session: record("writer", "+2348039999999", state{}), Events: events})
	}},
	{"texts", func(b Backend) Queue { return b.Texts }, func(t *testing.T, b Backend, at time.Time, msgs ...queued) {
		t.Helper()
		var texts []link.Text
		for _, m := range msgs {
			phone := "+234803100" + m.about
			if m.bare {
				phone = phone[1:]
			}
			texts = append(texts, text(m.id, phone, at))
		}
		if err := b.Store.EnqueueTexts(t.Context(), texts...); err != nil {
			t.Fatalf("EnqueueTexts: %v", err)
		}
	}},
}

// forEachQueue runs a queue behaviour on each queue, on a fresh backend.
func forEachQueue(name string, run func(t *testing.T, b Backend, k queueKind, q Queue)) behaviour {
	return behaviour{name: name, run: func(t *testing.T, open opener) {
		for _, k := range queueKinds {
			t.Run(k.name, func(t *testing.T) {
				b := open(t)
				run(t, b, k, k.queue(b))
			})
		}
	}}
}

// dueIDs returns the ids q hands out at now.
func dueIDs(t *testing.T, q Outbox, now time.Time) []string {
	t.Helper()
	return ids(due(t, q, now))
}

func queueBehaviours() []behaviour {
	return []behaviour{
		forEachQueue("messages queued at one instant are due in the order queued, after those due earlier", func(t *testing.T, b Backend, k queueKind, q Queue) {
			// The ids sort against the order they are queued in; each is
			// about something else, so none waits for another.
			k.put(t, b, t0, queued{id: "m_c", about: "0001"}, queued{id: "m_a", about: "0002"}, queued{id: "m_b", about: "0003"})
			k.put(t, b, t0, queued{id: "m_0", about: "0004"})
			k.put(t, b, t0.Add(-time.Second), queued{id: "m_early", about: "0005"})
			if got, want := dueIDs(t, q, t0), []string{"m_early", "m_c", "m_a", "m_b", "m_0"}; !slices.Equal(got, want) {
				t.Errorf("Due = %v, want %v: by due time, then in the order queued", got, want)
			}
		}),
		forEachQueue("Due hands out only what is due by now, at most max", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			for i := range 3 {
				k.put(t, b, t0.Add(time.Duration(i)*time.Minute), queued{id: fmt.Sprintf("m_%d", i), about: fmt.Sprintf("000%d", i)})
			}
			for _, c := range []struct {
				now  time.Time
				max  int
				want []string
			}{
				{t0.Add(-time.Microsecond), 100, nil},
				{t0, 100, []string{"m_0"}},
				{t0.Add(time.Minute), 100, []string{"m_0", "m_1"}},
				{t0.Add(time.Hour), 2, []string{"m_0", "m_1"}},
				{t0.Add(time.Hour), 0, nil},
			} {
				msgs, err := q.Due(ctx, c.now, c.max)
				if err != nil || !slices.Equal(ids(msgs), c.want) {
					t.Errorf("Due(t0%+v, %d) = %v, %v; want %v", c.now.Sub(t0), c.max, ids(msgs), err, c.want)
				}
			}
		}),
		{name: "a later message about one link waits while an earlier one is retried, until that is delivered or given up", run: func(t *testing.T, open opener) {
			finish := map[string]func(t *testing.T, q Queue, id string) error{
				"delivered": func(t *testing.T, q Queue, id string) error { return q.Delivered(t.Context(), id) },
				"given up":  func(t *testing.T, q Queue, id string) error { return q.GiveUp(t.Context(), id, "too old") },
			}
			type about struct {
				name                 string
				first, second, other queued // first and second about one thing, other about another
			}
			abouts := map[string][]about{
				"webhooks": {
					{"one account", queued{id: "m_2", about: "0001"}, queued{id: "m_1", about: "0001"}, queued{id: "m_0", about: "0002"}},
					{"one session with no account", queued{id: "m_2", about: "1", noAccount: true}, queued{id: "m_1", about: "1", noAccount: true},
						queued{id: "m_0", about: "2", noAccount: true}},
				},
				"texts": {
					{"one phone", queued{id: "m_2", about: "0001"}, queued{id: "m_1", about: "0001"}, queued{id: "m_0", about: "0002"}},
					{"one phone, with and without its +", queued{id: "m_2", about: "0001"}, queued{id: "m_1", about: "0001", bare: true}, queued{id: "m_0", about: "0002"}},
				},
			}
			for _, k := range queueKinds {
				for _, a := range abouts[k.name] {
					for how, done := range finish {
						t.Run(k.name+", "+a.name+", first "+how, func(t *testing.T) {
							b := open(t)
							ctx := t.Context()
							q := k.queue(b)
							k.put(t, b, t0, a.first, a.second, a.other)
							first, second, other := a.first.id, a.second.id, a.other.id
							if got, want := dueIDs(t, q, t0), []string{first, other}; !slices.Equal(got, want) {
								t.Fatalf("Due = %v, want %v: the second about one link waits for the first", got, want)
							}
							// The first fails and waits an hour: the second, due
							// now, still waits behind it; the other does not.
							if err := q.Reschedule(ctx, first, 1, t0.Add(time.Hour), "HTTP 503"); err != nil {
								t.Fatal(err)
							}
							if got, want := dueIDs(t, q, t0.Add(time.Minute)), []string{other}; !slices.Equal(got, want) {
								t.Fatalf("while the first is retried, Due = %v, want %v", got, want)
							}
							if err := q.Delivered(ctx, other); err != nil {
								t.Fatal(err)
							}
							if at, ok, err := q.NextDue(ctx); err != nil || !ok || !at.Equal(t0.Add(time.Hour)) {
								t.Fatalf("NextDue = %v, %v, %v; want the first's retry at t0+1h, not the waiting second", at, ok, err)
							}
							if got, want := dueIDs(t, q, t0.Add(time.Hour)), []string{first}; !slices.Equal(got, want) {
								t.Fatalf("at the retry, Due = %v, want %v", got, want)
							}
							if err := done(t, q, first); err != nil {
								t.Fatal(err)
							}
							if got, want := dueIDs(t, q, t0.Add(time.Hour)), []string{second}; !slices.Equal(got, want) {
								t.Errorf("once the first is %s, Due = %v, want %v", how, got, want)
							}
						})
					}
				}
			}
		}},
		forEachQueue("a message handed out and not yet settled is handed out again by the same store, until settled", func(t *testing.T, b Backend, k queueKind, q Queue) {
			// The store's worker keeps track of what it has in flight: it
			// asks Due for more than it starts, and looks ahead with Due.
			// What one store was handed stays its own (a backend shared by
			// several instances keeps it from the others for a lease).
			k.put(t, b, t0, queued{id: "m_1", about: "0001"})
			for _, now := range []time.Time{t0, t0, t0.Add(time.Minute), t0.Add(24 * time.Hour)} {
				if got, want := dueIDs(t, q, now), []string{"m_1"}; !slices.Equal(got, want) {
					t.Fatalf("Due(t0%+v) = %v, want %v again", now.Sub(t0), got, want)
				}
			}
			if err := q.Delivered(t.Context(), "m_1"); err != nil {
				t.Fatal(err)
			}
			if got := dueIDs(t, q, far); len(got) != 0 {
				t.Errorf("Due once delivered = %v, want nothing", got)
			}
		}),
		forEachQueue("Reschedule records the attempts, the error and when to try again", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			k.put(t, b, t0, queued{id: "m_1", about: "0001"})
			before := due(t, q, t0)
			if len(before) != 1 {
				t.Fatalf("Due = %v, want m_1", ids(before))
			}
			if err := q.Reschedule(ctx, "m_1", 3, t0.Add(5*time.Minute), "HTTP 503"); err != nil {
				t.Fatal(err)
			}
			if got := dueIDs(t, q, t0.Add(5*time.Minute-time.Microsecond)); len(got) != 0 {
				t.Errorf("Due before the retry = %v, want nothing", got)
			}
			after := due(t, q, t0.Add(5*time.Minute))
			want := before[0]
			want.Attempts, want.Next, want.LastErr = 3, t0.Add(5*time.Minute), "HTTP 503"
			if len(after) != 1 || !same(stripSeq(after[0]), stripSeq(want)) {
				t.Errorf("at the retry, Due = %v; want %s", show(after), show(want))
			}
		}),
		forEachQueue("GiveUp moves a message to the dead letters, as it was, with its error", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			k.put(t, b, t0, queued{id: "m_1", about: "0001"}, queued{id: "m_2", about: "0002"})
			if err := q.Reschedule(ctx, "m_1", 2, t0.Add(time.Minute), "HTTP 500"); err != nil {
				t.Fatal(err)
			}
			var want link.Message
			for _, m := range due(t, q, t0.Add(time.Minute)) {
				if m.ID == "m_1" {
					want = m
				}
			}
			if err := q.GiveUp(ctx, "m_1", "too old"); err != nil {
				t.Fatal(err)
			}
			want.LastErr = "too old"
			dead, err := q.DeadLetters(ctx)
			if err != nil || len(dead) != 1 || !same(stripSeq(dead[0]), stripSeq(want)) {
				t.Errorf("DeadLetters = %v, %v; want %s", show(dead), err, show(want))
			}
			if got, want := dueIDs(t, q, far), []string{"m_2"}; !slices.Equal(got, want) {
				t.Errorf("Due after giving up = %v, want %v", got, want)
			}
		}),
		forEachQueue("finishing a message that is gone is no error and brings nothing back", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			k.put(t, b, t0, queued{id: "m_1", about: "0001"})
			if err := q.Delivered(ctx, "m_1"); err != nil {
				t.Fatal(err)
			}
			for name, finish := range map[string]func(id string) error{
				"Delivered":  func(id string) error { return q.Delivered(ctx, id) },
				"Reschedule": func(id string) error { return q.Reschedule(ctx, id, 1, t0, "HTTP 503") },
				"GiveUp":     func(id string) error { return q.GiveUp(ctx, id, "too old") },
			} {
				for _, id := range []string{"m_1", "m_unknown"} {
					if err := finish(id); err != nil {
						t.Errorf("%s(%s) of a message gone = %v, want no error", name, id, err)
					}
				}
			}
			if got := dueIDs(t, q, far); len(got) != 0 {
				t.Errorf("Due = %v, want nothing", got)
			}
			if dead, err := q.DeadLetters(ctx); err != nil || len(dead) != 0 {
				t.Errorf("DeadLetters = %v, %v; want none", ids(dead), err)
			}
			if _, ok, err := q.NextDue(ctx); err != nil || ok {
				t.Errorf("NextDue = %v, %v; want an empty queue", ok, err)
			}
		}),
		forEachQueue("NextDue is when the earliest message Due would hand out is due", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			if _, ok, err := q.NextDue(ctx); err != nil || ok {
				t.Fatalf("NextDue of an empty queue = %v, %v; want false", ok, err)
			}
			k.put(t, b, t0.Add(10*time.Minute), queued{id: "m_z", about: "0001"})
			k.put(t, b, t0.Add(time.Minute), queued{id: "m_y", about: "0001"}) // waits behind m_z
			if at, ok, err := q.NextDue(ctx); err != nil || !ok || !at.Equal(t0.Add(10*time.Minute)) {
				t.Errorf("NextDue = %v, %v, %v; want t0+10m, not the waiting message's t0+1m", at, ok, err)
			}
			k.put(t, b, t0.Add(5*time.Minute), queued{id: "m_x", about: "0002"})
			if at, ok, err := q.NextDue(ctx); err != nil || !ok || !at.Equal(t0.Add(5*time.Minute)) {
				t.Errorf("NextDue = %v, %v, %v; want t0+5m", at, ok, err)
			}
		}),
		forEachQueue("a message queued again under its id replaces it and keeps its place", func(t *testing.T, b Backend, k queueKind, q Queue) {
			k.put(t, b, t0, queued{id: "m_b", about: "0001"}, queued{id: "m_a", about: "0001"})
			k.put(t, b, t0.Add(time.Minute), queued{id: "m_b", about: "0001"})
			if got := dueIDs(t, q, t0); len(got) != 0 {
				t.Errorf("Due(t0) = %v; want nothing: m_b moved to t0+1m and m_a still waits behind it", got)
			}
			msgs := drain(t, q)
			if got, want := ids(msgs), []string{"m_b", "m_a"}; !slices.Equal(got, want) {
				t.Fatalf("drained %v, want %v", got, want)
			}
			if !msgs[0].Created.Equal(t0.Add(time.Minute)) {
				t.Errorf("m_b created %v, want the replacement's t0+1m", msgs[0].Created)
			}
		}),
		forEachQueue("SweepDeadLetters forgets the dead letters created before its cut-off, at most max", func(t *testing.T, b Backend, k queueKind, q Queue) {
			ctx := t.Context()
			for i := range 4 {
				id := fmt.Sprintf("m_%d", i)
				k.put(t, b, t0.Add(time.Duration(i)*time.Hour), queued{id: id, about: fmt.Sprintf("000%d", i)})
				if err := q.GiveUp(ctx, id, "refused"); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := q.SweepDeadLetters(ctx, t0.Add(90*time.Minute), 100); err != nil || n != 2 {
				t.Fatalf("SweepDeadLetters(t0+90m) = %d, %v; want the 2 created before", n, err)
			}
			if n, err := q.SweepDeadLetters(ctx, t0.Add(24*time.Hour), 1); err != nil || n != 1 {
				t.Errorf("SweepDeadLetters(max 1) = %d, %v; want 1", n, err)
			}
			dead, err := q.DeadLetters(ctx)
			if err != nil || len(dead) != 1 {
				t.Errorf("dead letters left = %v, %v; want one", ids(dead), err)
			}
		}),
	}
}

// stripSeq is m without its queue sequence, which is the backend's own.
func stripSeq(m link.Message) link.Message {
	m.Seq = 0
	return m
}
