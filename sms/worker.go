package sms

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/store"
)

// Queue is the durable queue of texts; *store.Queue is one.
type Queue interface {
	Due(ctx context.Context, now time.Time, max int) ([]store.Message, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
	Delivered(ctx context.Context, id string) error
	Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	GiveUp(ctx context.Context, id string, lastErr string) error
}

var _ Queue = (*store.Queue)(nil)

// Worker sends the queued texts through the provider: one at a time, each
// retried with backoff while the provider's failure is temporary and
// RetryFor has not passed, so an outage delays messages and never drops
// them. Phones that texted STOP get only replies to their own messages.
type Worker struct {
	Queue    Queue
	Sender   SMSSender
	Texts    Texts
	OptedOut func(ctx context.Context, phone string) (bool, error)
	RetryFor time.Duration // default 24h
	Backoff  time.Duration // first retry; doubles up to MaxBackoff; default 5s
	// MaxBackoff caps the delay between retries; default 10m.
	MaxBackoff time.Duration
	Now        func() time.Time
	Log        zerolog.Logger

	wake chan struct{}
}

// Notify wakes Run to send what was just queued.
func (w *Worker) Notify() {
	select {
	case w.wakeup() <- struct{}{}:
	default:
	}
}

// wakeup is the channel Notify signals on.
func (w *Worker) wakeup() chan struct{} {
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
	}
	return w.wake
}

// Run sends due texts until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	wake := w.wakeup()
	for {
		for ctx.Err() == nil {
			due, err := w.Queue.Due(ctx, w.Now(), 20)
			if err != nil {
				w.Log.Error().Err(err).Msg("read text queue")
				break
			}
			for _, m := range due {
				w.send(ctx, m)
			}
			if len(due) < 20 {
				break
			}
		}
		wait := 30 * time.Second
		if at, ok, err := w.Queue.NextDue(ctx); err == nil && ok {
			wait = min(wait, max(time.Until(at), 10*time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// send delivers one queued text, or records why not.
func (w *Worker) send(ctx context.Context, m store.Message) {
	var t menus.Text
	if err := json.Unmarshal(m.Body, &t); err != nil {
		w.Log.Error().Err(err).Str("id", m.ID).Msg("unreadable queued text")
		w.Queue.GiveUp(ctx, m.ID, "unreadable")
		return
	}
	log := w.Log.With().Str("id", m.ID).Str("kind", t.Kind).Str("to", menus.MaskPhone(t.To)).Logger()
	if t.Kind != menus.TextReply && w.OptedOut != nil {
		if out, err := w.OptedOut(ctx, t.To); err == nil && out {
			log.Info().Msg("text not sent: the phone opted out")
			w.Queue.Delivered(ctx, m.ID)
			return
		}
	}
	text, ok := w.Texts.Render(t)
	if !ok {
		w.Queue.Delivered(ctx, m.ID) // this kind is switched off
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	id, err := w.Sender.Send(sendCtx, Message{To: t.To, Text: text})
	cancel()
	if err == nil {
		log.Info().Str("provider", w.Sender.Name()).Str("provider_id", id).Int("attempts", m.Attempts+1).Msg("text sent")
		w.Queue.Delivered(ctx, m.ID)
		return
	}
	var se *SendError
	temporary := !errors.As(err, &se) || se.Temporary
	now := w.Now()
	if !temporary || now.Sub(m.Created) >= w.retryFor() {
		log.Error().Err(err).Int("attempts", m.Attempts+1).Msg("text given up")
		w.Queue.GiveUp(ctx, m.ID, err.Error())
		return
	}
	next := now.Add(w.backoff(m.Attempts))
	log.Warn().Err(err).Int("attempts", m.Attempts+1).Time("next", next).Msg("text will be retried")
	w.Queue.Reschedule(ctx, m.ID, m.Attempts+1, next, err.Error())
}

// retryFor is how long a text is retried.
func (w *Worker) retryFor() time.Duration {
	if w.RetryFor > 0 {
		return w.RetryFor
	}
	return 24 * time.Hour
}

// backoff is the delay after the n-th failure: doubling, capped, jittered.
func (w *Worker) backoff(n int) time.Duration {
	base, top := w.Backoff, w.MaxBackoff
	if base <= 0 {
		base = 5 * time.Second
	}
	if top <= 0 {
		top = 10 * time.Minute
	}
	d := base
	for i := 0; i < n && d < top; i++ {
		d *= 2
	}
	d = min(d, top)
	return d/2 + rand.N(d/2+1)
}
