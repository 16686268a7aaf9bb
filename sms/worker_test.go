package sms

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rs/zerolog"
	"github.com/ussdlink/ussdlink/link"
)

// flakyQueue is a text queue in memory whose writes fail while failing is
// set. Each failed write is signalled on failed, each successful one on
// recorded; neither blocks.
type flakyQueue struct {
	mu       sync.Mutex
	msgs     map[string]link.Message
	dead     map[string]link.Message
	failing  bool
	writes   []string // successful writes: "delivered", "reschedule 1", "give up"
	failed   chan struct{}
	recorded chan struct{}
}

func newFlakyQueue(t *testing.T, texts ...link.Text) *flakyQueue {
	t.Helper()
	q := &flakyQueue{msgs: map[string]link.Message{}, dead: map[string]link.Message{},
		failed: make(chan struct{}, 1000), recorded: make(chan struct{}, 1000)}
	for _, x := range texts {
		body, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		q.msgs[x.ID] = link.Message{ID: x.ID, Type: x.Kind, Body: body, Created: x.Created, Next: x.Created, Key: x.To, Seq: 1}
	}
	return q
}

func (q *flakyQueue) Due(_ context.Context, now time.Time, max int) ([]link.Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []link.Message
	for _, m := range q.msgs {
		if !m.Next.After(now) && len(out) < max {
			out = append(out, m)
		}
	}
	return out, nil
}

func (q *flakyQueue) NextDue(context.Context) (time.Time, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var at time.Time
	for _, m := range q.msgs {
		if at.IsZero() || m.Next.Before(at) {
			at = m.Next
		}
	}
	return at, !at.IsZero(), nil
}

// write applies change unless writes fail.
func (q *flakyQueue) write(what string, change func()) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failing {
		signal(q.failed)
		return errors.New("disk full")
	}
	change()
	q.writes = append(q.writes, what)
	signal(q.recorded)
	return nil
}

func (q *flakyQueue) Delivered(_ context.Context, id string) error {
	return q.write("delivered", func() { delete(q.msgs, id) })
}

func (q *flakyQueue) Reschedule(_ context.Context, id string, attempts int, next time.Time, lastErr string) error {
	return q.write("reschedule", func() {
		m := q.msgs[id]
		m.Attempts, m.Next, m.LastErr = attempts, next, lastErr
		q.msgs[id] = m
	})
}

func (q *flakyQueue) GiveUp(_ context.Context, id string, lastErr string) error {
	return q.write("give up", func() {
		q.dead[id] = q.msgs[id]
		delete(q.msgs, id)
	})
}

func (q *flakyQueue) setFailing(on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failing = on
}

// signal notes an event on c without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// countingSender counts the texts handed to it and answers each with err.
type countingSender struct {
	mu  sync.Mutex
	n   int
	err error
}

func (s *countingSender) Name() string { return "counting" }

func (s *countingSender) Send(context.Context, Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return "prov-1", s.err
}

func (s *countingSender) sends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func TestATextWhoseOutcomeTheStoreCannotRecordIsNotSentAgain(t *testing.T) {
	tests := []struct {
		name      string
		sendErr   error
		wantWrite string // the outcome recorded once the store recovers
	}{
		{"sent, but not marked sent", nil, "delivered"},
		{"failed for now, but the failure not recorded", &SendError{Provider: "counting", Status: 503, Temporary: true}, "reschedule"},
		{"refused, but not given up", &SendError{Provider: "counting", Status: 400}, "give up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newFlakyQueue(t, link.Text{ID: "sms_1", Kind: link.TextReply, To: "+2348031000007",
					Data: map[string]string{"text": "hello"}, Created: time.Now()})
				q.setFailing(true)
				sender := &countingSender{err: tt.sendErr}
				w := &Worker{Queue: q, Sender: sender, Now: time.Now, Log: zerolog.Nop(),
					Backoff: time.Second, MaxBackoff: 8 * time.Second}

				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				var notifiers sync.WaitGroup
				for range 8 { // wake-ups from other goroutines while Run starts and runs
					notifiers.Go(func() {
						for range 20 {
							w.Notify()
						}
					})
				}

				for range 6 { // the outcome, then retries of recording it
					<-q.failed
				}
				if got := sender.sends(); got != 1 {
					t.Fatalf("%d sends while the store failed to record the outcome, want 1", got)
				}

				q.setFailing(false)
				w.Notify()
				<-q.recorded
				q.mu.Lock()
				first := q.writes[0]
				q.mu.Unlock()
				if first != tt.wantWrite {
					t.Errorf("first outcome recorded after the store recovered: %q, want %q", first, tt.wantWrite)
				}
				if tt.wantWrite != "reschedule" {
					synctest.Wait()
					if got := sender.sends(); got != 1 {
						t.Errorf("%d sends in all, want 1", got)
					}
				}

				cancel()
				if err := <-done; err != nil {
					t.Errorf("Run = %v", err)
				}
				notifiers.Wait()
			})
		})
	}
}
