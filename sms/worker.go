package sms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/outbox"
	"github.com/ussdlink/ussdlink/phone"
	"github.com/ussdlink/ussdlink/wirejson"
)

// DefaultRetryFor is how long a text that failed for a passing reason is
// tried again unless configured: a day, past which its news is stale.
const DefaultRetryFor = 24 * time.Hour

// DefaultSessionTTL is how long a text conversation waits for the next
// message unless configured: texts are slower than USSD screens.
const DefaultSessionTTL = 10 * time.Minute

// DefaultTextsInFlight is how many texts are handed to the provider at
// once unless configured: enough that receipts keep up with a busy
// gateway's links while each provider call takes a few hundred
// milliseconds.
const DefaultTextsInFlight = 32

// Text worker defaults.
const (
	textsDefaultBackoff    = 5 * time.Second  // the first retry
	textsDefaultMaxBackoff = 10 * time.Minute // the longest wait between retries
	textsSendTimeout       = 15 * time.Second // one provider call
	textsPollEvery         = 30 * time.Second // look at the queue at least this often
)

// Queue is the durable queue of texts; the store's queues implement it. The texts to
// one phone share an ordering key, so they arrive in the order they were
// queued.
type Queue = outbox.Queue

// Worker sends the queued texts through the provider, a few at a time and
// those to one phone in order, each retried with backoff while the
// provider's failure is temporary and RetryFor has not passed, so an outage
// delays messages and never drops them. Phones that texted STOP get only
// replies to their own messages. The queueing itself (wake-ups, backoff,
// store failures) is outbox.Worker's.
//
// Set the fields, then call Run once; Notify may be called at any time.
// Fields changed after the first Notify or Run have no effect.
type Worker struct {
	// Observe, when set, hears each text's attempt result (see
	// outbox.Worker.Observe).
	Observe func(result string)
	// Language, when set, is the language a phone chose, for texts whose
	// producer named none.
	Language func(ctx context.Context, phone string) (string, error)
	Queue    Queue
	Sender   SMSSender
	Texts    Texts
	OptedOut func(ctx context.Context, phone string) (bool, error)
	RetryFor time.Duration // default DefaultRetryFor
	// MaxInFlight is how many texts are handed to the provider at once
	// (texts to one phone still go one after another); default
	// DefaultTextsInFlight.
	MaxInFlight int
	Backoff     time.Duration // first retry; doubles up to MaxBackoff; default 5s
	// MaxBackoff caps the delay between retries; default 10m.
	MaxBackoff time.Duration
	Now        func() time.Time
	Log        zerolog.Logger

	once   sync.Once
	worker *outbox.Worker
}

// Notify wakes Run to send what was just queued. It never blocks, and may
// be called from any goroutine, before or during Run.
func (w *Worker) Notify() {
	w.queueWorker().Notify()
}

// Run sends due texts until ctx ends, then waits for the sends under way.
func (w *Worker) Run(ctx context.Context) error {
	switch {
	case w.Queue == nil:
		return errors.New("text worker: no queue")
	case w.Sender == nil:
		return errors.New("text worker: no sender")
	}
	if err := w.queueWorker().Run(ctx); err != nil {
		return fmt.Errorf("text worker: %w", err)
	}
	return nil
}

// queueWorker returns the worker that runs the queue, made once from the
// fields.
func (w *Worker) queueWorker() *outbox.Worker {
	w.once.Do(func() {
		w.worker = &outbox.Worker{
			Queue:       w.Queue,
			Send:        w.send,
			Noun:        "text",
			MaxInFlight: intOr(w.MaxInFlight, DefaultTextsInFlight),
			RetryFor:    durationOr(w.RetryFor, DefaultRetryFor),
			Backoff:     durationOr(w.Backoff, textsDefaultBackoff),
			MaxBackoff:  durationOr(w.MaxBackoff, textsDefaultMaxBackoff),
			PollEvery:   textsPollEvery,
			Now:         w.Now,
			Log:         w.Log,
			Observe:     w.Observe,
		}
	})
	return w.worker
}

// withLang is data with the language set, copied.
func withLang(data map[string]string, code string) map[string]string {
	out := make(map[string]string, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	out[LangKey] = code
	return out
}

// send makes one attempt at a queued text: rendered and handed to the
// provider, or skipped when the phone opted out or its kind is off.
func (w *Worker) send(ctx context.Context, m link.Message) error {
	var t link.Text
	if err := wirejson.Unmarshal(m.Body, &t); err != nil {
		return outbox.Permanent(errors.New("unreadable queued text"))
	}
	log := outbox.Logger(ctx)
	log.UpdateContext(func(c zerolog.Context) zerolog.Context {
		return c.Str("kind", t.Kind).Str("to", phone.Mask(t.To))
	})
	if t.Kind != link.TextReply && w.OptedOut != nil {
		out, err := w.OptedOut(ctx, t.To)
		if err != nil {
			return fmt.Errorf("read opt-out: %w", err) // never text a phone that may have said STOP
		}
		if out {
			return outbox.Skip("the phone opted out")
		}
	}
	if t.Data[LangKey] == "" && w.Language != nil {
		code, err := w.Language(ctx, t.To)
		if err != nil {
			return fmt.Errorf("read the phone's language: %w", err)
		}
		if code != "" {
			t.Data = withLang(t.Data, code)
		}
	}
	text, ok := w.Texts.Render(t)
	if !ok {
		return outbox.Skip("this kind of text is switched off")
	}
	sendCtx, cancel := context.WithTimeout(ctx, textsSendTimeout)
	defer cancel()
	id, err := w.Sender.Send(sendCtx, Message{To: t.To, Text: text})
	log.UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str("provider", w.Sender.Name()) })
	if err != nil {
		var se *SendError
		if errors.As(err, &se) && !se.Temporary {
			return outbox.Permanent(err)
		}
		return err
	}
	log.UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str("provider_id", id) })
	return nil
}

// durationOr returns d, or def when d is not set.
func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// intOr is n, or def when n is not positive.
func intOr(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}
