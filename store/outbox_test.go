package store_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store"
)

// queued is one message to queue in an ordering test: its id and the link
// (account, or session when account is empty) or phone it is about.
type queued struct{ id, account, session string }

// queueKind puts messages in one of the two queues.
type queueKind struct {
	name  string
	queue func(*store.DB) *store.Queue
	put   func(t *testing.T, db *store.DB, at time.Time, msgs ...queued)
}

var queueKinds = []queueKind{
	{"webhooks", (*store.DB).Webhooks, func(t *testing.T, db *store.DB, at time.Time, msgs ...queued) {
		t.Helper()
		var events []link.Event
		for _, m := range msgs {
			data := map[string]any{"session": m.session, "phone": "+2348031000007"}
			if m.account != "" {
				data["account_id"] = m.account
			}
			events = append(events, link.Event{ID: m.id, Type: "ACCOUNT_LINKED", Timestamp: at, Data: data})
		}
		if err := db.Enqueue(context.Background(), events...); err != nil {
			t.Fatal(err)
		}
	}},
	{"texts", (*store.DB).Texts, func(t *testing.T, db *store.DB, at time.Time, msgs ...queued) {
		t.Helper()
		var texts []link.Text
		for _, m := range msgs {
			// The phone is the text's key; the account field stands for it.
			texts = append(texts, link.Text{ID: m.id, Kind: link.TextReply, To: "+234803100" + m.account,
				Data: map[string]string{"text": "hi"}, Created: at})
		}
		if err := db.EnqueueTexts(context.Background(), texts...); err != nil {
			t.Fatal(err)
		}
	}},
}

// ids returns the ids of msgs, in order.
func ids(msgs []link.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// due returns the ids Due hands out at now.
func due(t *testing.T, q *store.Queue, now time.Time) []string {
	t.Helper()
	msgs, err := q.Due(context.Background(), now, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ids(msgs)
}

func TestMessagesQueuedAtOneInstantAreDueInTheOrderTheyWereQueued(t *testing.T) {
	for _, kind := range queueKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "order.db"), newSealer(t, 0x31))
			defer db.Close()
			// Ids sort against the order they are queued in; each is about
			// another link, so none waits for another.
			kind.put(t, db, t0, queued{"m_c", "0001", "s1"}, queued{"m_a", "0002", "s2"}, queued{"m_b", "0003", "s3"})
			kind.put(t, db, t0, queued{"m_0", "0004", "s4"})
			kind.put(t, db, t0.Add(-time.Second), queued{"m_early", "0005", "s5"})

			got, want := due(t, kind.queue(db), t0), []string{"m_early", "m_c", "m_a", "m_b", "m_0"}
			if !slices.Equal(got, want) {
				t.Errorf("Due = %v, want %v: by due time, then by the order queued", got, want)
			}
		})
	}
}

func TestALaterMessageOfOneLinkWaitsUntilTheEarlierIsDone(t *testing.T) {
	ctx := context.Background()
	finish := map[string]func(q *store.Queue, id string) error{
		"delivered": func(q *store.Queue, id string) error { return q.Delivered(ctx, id) },
		"given up":  func(q *store.Queue, id string) error { return q.GiveUp(ctx, id, "too old") },
	}
	links := []struct {
		name          string
		first, second queued // about one link
		other         queued // about another
	}{
		{"same account", queued{"m_2", "0001", "s1"}, queued{"m_1", "0001", "s2"}, queued{"m_0", "0002", "s1"}},
		{"no account: same session", queued{"m_2", "", "s1"}, queued{"m_1", "", "s1"}, queued{"m_0", "", "s2"}},
	}
	for _, kind := range queueKinds {
		for _, link := range links {
			if kind.name == "texts" && link.first.account == "" {
				continue // every text has a phone
			}
			for how, done := range finish {
				t.Run(kind.name+"/"+link.name+"/first "+how, func(t *testing.T) {
					db := openDB(t, filepath.Join(t.TempDir(), "order.db"), newSealer(t, 0x32))
					defer db.Close()
					q := kind.queue(db)
					kind.put(t, db, t0, link.first, link.second, link.other)
					first, second, other := link.first.id, link.second.id, link.other.id

					if got, want := due(t, q, t0), []string{first, other}; !slices.Equal(got, want) {
						t.Fatalf("Due = %v, want %v: the second about a link waits for the first", got, want)
					}
					// The first fails and waits an hour: the second, due now,
					// still waits behind it; the other link does not.
					if err := q.Reschedule(ctx, first, 1, t0.Add(time.Hour), "HTTP 503"); err != nil {
						t.Fatal(err)
					}
					if got, want := due(t, q, t0.Add(time.Minute)), []string{other}; !slices.Equal(got, want) {
						t.Fatalf("while the first is retried, Due = %v, want %v", got, want)
					}
					if err := q.Delivered(ctx, other); err != nil {
						t.Fatal(err)
					}
					at, ok, err := q.NextDue(ctx)
					if err != nil || !ok || !at.Equal(t0.Add(time.Hour)) {
						t.Fatalf("NextDue = %v, %v, %v; want the first's retry at %v, not the waiting second", at, ok, err, t0.Add(time.Hour))
					}
					if got, want := due(t, q, t0.Add(time.Hour)), []string{first}; !slices.Equal(got, want) {
						t.Fatalf("at the retry, Due = %v, want %v", got, want)
					}

					if err := done(q, first); err != nil {
						t.Fatal(err)
					}
					if got, want := due(t, q, t0.Add(time.Hour)), []string{second}; !slices.Equal(got, want) {
						t.Errorf("once the first is %s, Due = %v, want %v", how, got, want)
					}
				})
			}
		}
	}
}

func TestDueExceptLeavesOutWhatTheWorkerHoldsAndCountsTheRest(t *testing.T) {
	for _, kind := range queueKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "except.db"), newSealer(t, 0x34))
			defer db.Close()
			q := kind.queue(db)
			// a_1 and a_2 are about one link; b and c about others.
			kind.put(t, db, t0, queued{"a_1", "0001", "s1"}, queued{"a_2", "0001", "s1"}, queued{"b", "0002", "s2"}, queued{"c", "0003", "s3"})
			held := map[string]bool{"a_1": true}
			var asked []string
			skip := func(id []byte) bool { asked = append(asked, string(id)); return held[string(id)] }

			tests := []struct {
				max  int
				want []string
			}{
				{1, []string{"b"}},      // a_1 is held: it takes no place
				{5, []string{"b", "c"}}, // a_2 still waits behind a_1, queued
			}
			for _, tt := range tests {
				msgs, err := q.DueExcept(context.Background(), t0, tt.max, skip)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(msgs); !slices.Equal(got, tt.want) {
					t.Errorf("DueExcept(max %d) = %v, want %v", tt.max, got, tt.want)
				}
			}
			if !slices.Contains(asked, "a_1") {
				t.Errorf("skip was asked about %v, never about the held a_1", asked)
			}
			if got, want := due(t, q, t0), []string{"a_1", "b", "c"}; !slices.Equal(got, want) {
				t.Errorf("Due = %v, want %v: it leaves nothing out", got, want)
			}
		})
	}
}

func TestQueueOrderSurvivesAReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "order.db")
	for _, kind := range queueKinds {
		t.Run(kind.name, func(t *testing.T) {
			db := openDB(t, path, newSealer(t, 0x33))
			kind.put(t, db, t0, queued{"m_z", "0001", "s1"})
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openDB(t, path, newSealer(t, 0x33))
			defer db.Close()
			kind.put(t, db, t0, queued{"m_y", "0002", "s2"}, queued{"m_x", "0001", "s1"})
			q := kind.queue(db)
			if got, want := due(t, q, t0), []string{"m_z", "m_y"}; !slices.Equal(got, want) {
				t.Errorf("Due = %v, want %v", got, want)
			}
			if err := q.Delivered(context.Background(), "m_z"); err != nil {
				t.Fatal(err)
			}
			if got, want := due(t, q, t0), []string{"m_y", "m_x"}; !slices.Equal(got, want) {
				t.Errorf("after the first is delivered, Due = %v, want %v", got, want)
			}
		})
	}
}

func TestAMessageQueuedBeforeSequencesExistedIsStillSentAndRemoved(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "legacy.db")
	db := openDB(t, path, newSealer(t, 0x34))
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The old layout: no key, no sequence, indexed by next attempt + id.
	old := link.Message{ID: "msg_old", Type: "ACCOUNT_LINKED", Body: []byte(`{}`), Created: t0, Next: t0}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		data, err := json.Marshal(old)
		if err != nil {
			return err
		}
		if err := tx.Bucket([]byte("outbox")).Put([]byte(old.ID), data); err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(nil, uint64(t0.UnixNano()))
		return tx.Bucket([]byte("outbox_due")).Put(append(k, old.ID...), nil)
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	db = openDB(t, path, newSealer(t, 0x34))
	defer db.Close()
	q := db.Webhooks()
	if got, want := due(t, q, t0), []string{"msg_old"}; !slices.Equal(got, want) {
		t.Fatalf("Due = %v, want %v", got, want)
	}
	if err := q.Reschedule(ctx, "msg_old", 1, t0.Add(time.Minute), "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if got := due(t, q, t0); len(got) != 0 {
		t.Fatalf("after a reschedule, Due now = %v, want nothing", got)
	}
	if err := q.Delivered(ctx, "msg_old"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.NextDue(ctx); ok || err != nil {
		t.Errorf("NextDue after delivery = %v, %v: want an empty queue", ok, err)
	}
}
