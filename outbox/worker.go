// Package outbox sends what the gateway queued durably for the outside world
// (partner webhooks, text messages) with one careful worker for every queue.
// The worker wakes when told, sends a few messages at a time, keeps the
// messages of one ordering key in the order they were queued, retries with
// jittered exponential backoff until a message is too old, backs off when
// the store fails, and never sends a message again merely because its
// outcome could not be written down.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
)

// Worker defaults.
const (
	defaultMaxInFlight = 4
	defaultPollEvery   = 30 * time.Second
	defaultRetryFor    = 24 * time.Hour
	defaultBackoff     = 5 * time.Second
	defaultMaxBackoff  = time.Hour
	// idleFloor is the least Run sleeps when the queue says a message is
	// due that Due did not hand out: a queue that disagrees with itself
	// must not make Run spin.
	idleFloor = time.Second
)

// Queue is the durable queue a Worker works through; the store's queues implement it.
type Queue interface {
	// Due returns up to max messages whose next attempt is not after now,
	// in (due time, enqueue sequence) order. Of the messages that share an
	// ordering key it returns only the earliest queued, and none while that
	// one is not due: a later message waits for an earlier one to be done.
	Due(ctx context.Context, now time.Time, max int) ([]link.Message, error)
	// NextDue returns when the earliest message Due would return is due,
	// or false when there is none.
	NextDue(ctx context.Context) (time.Time, bool, error)
	// Delivered removes a message that was sent (or deliberately not).
	Delivered(ctx context.Context, id string) error
	// Reschedule records a failed attempt and when to try again.
	Reschedule(ctx context.Context, id string, attempts int, next time.Time, lastErr string) error
	// GiveUp moves a message that cannot be sent to the dead letters.
	GiveUp(ctx context.Context, id string, lastErr string) error
}

// SkippingQueue is a Queue that can leave the messages a worker holds out
// of Due, unread; the bbolt store's queues are. A queue whose Due must see
// them (PostgreSQL's renews their leases as it reads them) is not.
type SkippingQueue interface {
	Queue
	// DueExcept is Due without the messages skip reports by id: they are
	// neither read nor counted in max. A message left out still holds
	// back the later ones of its ordering key, as it would if it were
	// handed out. skip must not keep the id.
	DueExcept(ctx context.Context, now time.Time, max int, skip func(id []byte) bool) ([]link.Message, error)
}

// SettlingQueue is a Queue that removes the messages delivered since its
// last read in the same transaction as its next read: one commit, and one
// flush to disk, for both, where Delivered is one of its own for each
// message (PostgreSQL's queues). The worker hands it each message sent or
// deliberately not sent at its next read, holding the outcome until then:
// the message is not sent again meanwhile, and later ones of its ordering
// key wait for it as they wait for one in flight.
type SettlingQueue interface {
	Queue
	// DeliveredThenDue removes the messages delivered, as Delivered does
	// each (one already gone is no error), then returns what Due(now,
	// max) returns, all or nothing: on an error none is removed. With
	// max 0 it only removes. The messages held (the worker's in flight,
	// or their outcome held) are left out, unread and not counted in max,
	// but when the queue must hand one out again (PostgreSQL's, to renew
	// its lease); one left out still holds back the later ones of its
	// ordering key.
	DeliveredThenDue(ctx context.Context, delivered []string, now time.Time, max int, held []string) ([]link.Message, error)
}

// Worker sends the messages of one Queue through Send: at most MaxInFlight
// at once, never two of one ordering key at once, each retried with
// exponential backoff until Send succeeds, fails for good (Permanent), or
// RetryFor has passed since it was queued; then it is given up to the dead
// letters. Delivery is at least once.
//
// When the store cannot record an outcome, the worker holds that outcome
// in memory and records it once the store answers again, after a backoff:
// the message is not sent again meanwhile (only a restart in between sends
// it twice). While the store fails, nothing new is started.
//
// Set the fields, then call Run once; Notify may be called at any time from
// any goroutine. A Worker must not be copied once used.
type Worker struct {
	// Queue holds the messages.
	Queue Queue
	// Send makes one attempt at a message. Nil means sent; Skip means
	// deliberately not sent (it leaves the queue all the same); Permanent
	// means refused for good; any other error is retried. It is given the
	// attempt's logger in its context (see Logger) and should return
	// within a bounded time: Run waits for it when stopping.
	Send func(ctx context.Context, m link.Message) error
	// Noun names a message in logs and errors ("webhook", "text").
	Noun string
	// MaxInFlight is how many messages are sent at once; zero means 4.
	MaxInFlight int
	// RetryFor is how long after a message was queued failures are still
	// retried; zero means 24h.
	RetryFor time.Duration
	// Backoff is the delay after a first failure, doubling with each
	// further one up to MaxBackoff, with jitter; the same delays pace the
	// retries of a failing store. Zero means 5s and 1h.
	Backoff, MaxBackoff time.Duration
	// PollEvery is how often Run looks at the queue when nothing wakes it
	// sooner; zero means 30s.
	PollEvery time.Duration
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Log records each attempt and every store failure.
	Log zerolog.Logger
	// Observe, when set, hears each recorded attempt's result: "sent",
	// "skipped", "retry" or "gave_up" (for metrics).
	Observe func(result string)

	once    sync.Once
	wake    chan struct{}
	running atomic.Bool
}

// Notify wakes Run at once to look for due messages, such as after new ones
// were committed. It never blocks, and may be called from any goroutine,
// before or during Run; wake-ups while Run is busy are merged.
func (w *Worker) Notify() {
	select {
	case w.wakeChan() <- struct{}{}:
	default:
	}
}

// wakeChan returns the channel Notify signals, made once, so that the zero
// Worker works and Notify may race with Run.
func (w *Worker) wakeChan() chan struct{} {
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
	return w.wake
}

// Run sends due messages until ctx ends, sleeping between them until the
// next one is due, Notify is called, or PollEvery has passed. When ctx ends
// it waits for the sends under way to finish and record their outcomes,
// then returns nil. It returns an error at once when the Worker lacks its
// Queue or Send, or is already running.
func (w *Worker) Run(ctx context.Context) error {
	switch {
	case w.Queue == nil:
		return errors.New(w.noun() + " worker: no queue")
	case w.Send == nil:
		return errors.New(w.noun() + " worker: nothing to send with")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New(w.noun() + " worker: already running")
	}
	defer w.running.Store(false)

	r := w.newRun(ctx)
	defer r.stop()
	for ctx.Err() == nil {
		now := w.now()
		started := r.work(now)
		r.sleep(r.sleepFor(now, started))
	}
	return nil
}

// outcomeKind is what became of one attempt.
type outcomeKind int

// Outcomes of an attempt.
const (
	outcomeSent    outcomeKind = iota // Send succeeded
	outcomeSkipped                    // Send chose not to send
	outcomeRetry                      // failed; try again later
	outcomeGivenUp                    // failed for good, or too old
)

// String names the outcome in logs.
func (k outcomeKind) String() string {
	return [...]string{"sent", "skipped", "retry", "given up"}[k]
}

// verb says what became of a message, after its noun in a log line.
func (k outcomeKind) verb() string {
	return [...]string{"sent", "not sent", "failed: will retry", "given up: moved to dead letters"}[k]
}

// outcome is one attempt's result, ready to be recorded in the queue.
type outcome struct {
	id, key  string
	kind     outcomeKind
	attempts int       // attempts made, this one included
	next     time.Time // outcomeRetry: when to try again
	reason   string    // why it failed, or was skipped
	log      *zerolog.Logger
}

// result is what one attempt reports to Run.
type result struct {
	o        outcome
	err      error // the queue could not record the outcome
	deferred bool  // left for a SettlingQueue's next read
}

// run is the state of one Run, owned by its goroutine.
type run struct {
	w        *Worker
	ctx      context.Context
	bg       context.Context // for sends and records: not cut short by shutdown
	results  chan result
	wg       sync.WaitGroup
	inFlight map[string]string  // id → ordering key of the messages being sent
	held     map[string]outcome // id → outcome the queue failed to record
	// delivered are the outcomes, sent or skipped, that a SettlingQueue
	// records with its next read (settling: the worker's queue is one).
	delivered map[string]outcome
	settling  SettlingQueue
	keys      map[string]int // ordering keys of the messages in flight, held or delivered
	pause     time.Time      // after a store error: nothing new before this
	storeErr  int            // store errors in a row
	// next is when the earliest message startDue saw and did not start
	// is due (nextOK: there was one), when nextKnown: this round's
	// startDue read the queue far enough ahead for sleepFor.
	next              time.Time
	nextOK, nextKnown bool
}

// newRun prepares the state of one Run.
func (w *Worker) newRun(ctx context.Context) *run {
	n := w.maxInFlight()
	settling, _ := w.Queue.(SettlingQueue)
	return &run{
		w: w, ctx: ctx, bg: context.WithoutCancel(ctx),
		// Buffered for every send in flight, so that none blocks reporting
		// after Run stopped listening.
		results:   make(chan result, n),
		inFlight:  make(map[string]string, n),
		held:      make(map[string]outcome),
		delivered: make(map[string]outcome),
		settling:  settling,
		keys:      make(map[string]int),
	}
}

// work records held outcomes once the store may be tried again, then starts
// the due messages there is room for; it returns how many it started.
func (r *run) work(now time.Time) int {
	r.nextKnown = false
	if now.Before(r.pause) || !r.recordHeld(now) {
		return 0
	}
	return r.startDue(now)
}

// recordHeld tries again to record the outcomes the queue failed to record,
// and reports whether none is left.
func (r *run) recordHeld(now time.Time) bool {
	for id, o := range r.held {
		if err := r.w.record(r.bg, o); err != nil {
			r.storeFailed(now)
			o.log.Error().Err(err).Str("outcome", o.kind.String()).Time("retry_at", r.pause).
				Msg(r.w.noun() + " outcome still not recorded: held, and not sent again")
			return false
		}
		delete(r.held, id)
		r.release(o.key)
		r.storeErr = 0
		r.w.logOutcome(o, true)
	}
	return true
}

// startDue starts sending the due messages there is room for, skipping
// those in flight or held, and returns how many it started. It reads the
// queue up to the next poll in the same call, one message past what it
// can start, so that sleepFor knows when the next one is due without
// reading the queue again.
func (r *run) startDue(now time.Time) int {
	free := r.w.maxInFlight() - len(r.inFlight)
	started := 0
	// A SettlingQueue hands back what it renews the lease of, in the
	// place of others: a read full of those is followed by one more.
	for reads := 0; started < free && reads < 2; reads++ {
		asked := free - started + 1
		msgs, err := r.due(now.Add(r.w.pollEvery()), asked)
		if err != nil {
			if r.ctx.Err() == nil {
				r.storeFailed(now)
				r.w.Log.Error().Err(err).Time("retry_at", r.pause).Msg(r.w.noun() + " queue: reading due messages")
			}
			return started
		}
		r.storeErr = 0
		r.nextOK, r.nextKnown = false, true
		busy := 0
		for _, m := range msgs {
			if r.busy(m) {
				busy++
				continue
			}
			if started < free && !m.Next.After(now) {
				r.start(m)
				started++
				continue
			}
			r.next, r.nextOK = m.Next, true // the earliest not started: Due's order
			break
		}
		if r.settling == nil || busy == 0 || len(msgs) < asked || r.nextOK {
			break
		}
	}
	return started
}

// busy reports whether m, or an earlier message of its ordering key, is
// being sent or waits for its outcome to be recorded.
func (r *run) busy(m link.Message) bool {
	if _, ok := r.inFlight[m.ID]; ok {
		return true
	}
	if _, ok := r.held[m.ID]; ok {
		return true
	}
	return m.Key != "" && r.keys[m.Key] > 0
}

// start sends m in its own goroutine.
func (r *run) start(m link.Message) {
	r.inFlight[m.ID] = m.Key
	r.take(m.Key)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.results <- r.w.attempt(r.bg, m, r.settling != nil)
	}()
}

// take and release count the messages of a key in flight or held.
func (r *run) take(key string) {
	if key != "" {
		r.keys[key]++
	}
}

func (r *run) release(key string) {
	if key == "" {
		return
	}
	if r.keys[key]--; r.keys[key] <= 0 {
		delete(r.keys, key)
	}
}

// settle takes in the report of a finished attempt.
func (r *run) settle(res result) {
	delete(r.inFlight, res.o.id)
	if res.deferred {
		r.delivered[res.o.id] = res.o // its key stays taken until it is recorded
		return
	}
	if res.err == nil {
		r.release(res.o.key)
		r.storeErr = 0
		return
	}
	r.held[res.o.id] = res.o // its key stays taken until it is recorded
	r.storeFailed(r.w.now())
	res.o.log.Error().Err(res.err).Str("outcome", res.o.kind.String()).Time("retry_at", r.pause).
		Msg(r.w.noun() + " outcome could not be recorded: held, and not sent again, until the store recovers")
}

// storeFailed pauses new work for a backoff that grows with the store
// errors in a row.
func (r *run) storeFailed(now time.Time) {
	r.pause = now.Add(r.w.backoff(r.storeErr))
	r.storeErr++
}

// sleepFor returns how long Run may sleep: until the earliest message not
// in flight is due, or the store may be tried again after an error, and
// never longer than PollEvery. A finished attempt or Notify wakes Run
// sooner.
func (r *run) sleepFor(now time.Time, started int) time.Duration {
	wait := r.w.pollEvery()
	if now.Before(r.pause) {
		return min(r.pause.Sub(now), wait)
	}
	if len(r.inFlight) >= r.w.maxInFlight() {
		return wait // a finished attempt frees a slot and wakes Run
	}
	next, ok, err := r.next, r.nextOK, error(nil)
	if !r.nextKnown {
		next, ok, err = r.nextDue(now)
	}
	if err != nil {
		if r.ctx.Err() != nil {
			return wait
		}
		r.storeFailed(now)
		r.w.Log.Error().Err(err).Time("retry_at", r.pause).Msg(r.w.noun() + " queue: reading the next due time")
		return min(r.pause.Sub(now), wait)
	}
	if ok {
		wait = min(max(next.Sub(now), 0), wait)
	}
	if wait <= 0 && started == 0 {
		wait = min(idleFloor, r.w.pollEvery())
	}
	return wait
}

// due reads the messages due by end: up to max that are not in flight or
// held. A SettlingQueue first records the deliveries not yet recorded, and
// it and a SkippingQueue leave those out unread; a plain Queue is asked
// for that many more, and hands them out too.
func (r *run) due(end time.Time, max int) ([]link.Message, error) {
	if r.settling != nil {
		msgs, err := r.settling.DeliveredThenDue(r.ctx, r.deliveredIDs(), end, max, r.heldIDs())
		if err == nil {
			r.settled()
		}
		return msgs, err
	}
	if q, ok := r.w.Queue.(SkippingQueue); ok {
		return q.DueExcept(r.ctx, end, max, r.holds)
	}
	return r.w.Queue.Due(r.ctx, end, len(r.inFlight)+len(r.held)+max)
}

// deliveredIDs are the ids of the outcomes a SettlingQueue records with
// its next read.
func (r *run) deliveredIDs() []string {
	if len(r.delivered) == 0 {
		return nil
	}
	ids := make([]string, 0, len(r.delivered))
	for id := range r.delivered {
		ids = append(ids, id)
	}
	return ids
}

// heldIDs are the ids of the messages in flight or whose outcome is held.
func (r *run) heldIDs() []string {
	ids := slices.AppendSeq(make([]string, 0, len(r.inFlight)+len(r.held)), maps.Keys(r.inFlight))
	return slices.AppendSeq(ids, maps.Keys(r.held))
}

// settled takes in that the queue recorded the delivered outcomes: their
// keys are let go and they are logged.
func (r *run) settled() {
	for id, o := range r.delivered {
		delete(r.delivered, id)
		r.release(o.key)
		r.w.logOutcome(o, false)
	}
}

// holds reports whether the message of id is in flight or its outcome is
// held.
func (r *run) holds(id []byte) bool {
	if _, ok := r.inFlight[string(id)]; ok {
		return true
	}
	_, ok := r.held[string(id)]
	return ok
}

// nextDue returns when the earliest message that is not busy is due. With
// nothing busy that is the queue's NextDue; otherwise the busy messages
// (still queued, due in the past) come first, so it looks past them among
// those due before the next poll (a queue that leaves them out hands out
// only the others, but those whose lease it renews).
func (r *run) nextDue(now time.Time) (time.Time, bool, error) {
	if len(r.inFlight) == 0 && len(r.held) == 0 && len(r.delivered) == 0 {
		return r.w.Queue.NextDue(r.ctx)
	}
	msgs, err := r.due(now.Add(r.w.pollEvery()), 1)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, m := range msgs {
		if !r.busy(m) {
			return m.Next, true, nil
		}
	}
	return time.Time{}, false, nil
}

// sleep waits for wait, an attempt to finish, Notify or the end of ctx,
// then takes in every attempt that finished meanwhile.
func (r *run) sleep(wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-r.ctx.Done():
	case res := <-r.results:
		r.settle(res)
	case <-r.w.wakeChan():
	case <-timer.C:
	}
	r.drain()
}

// drain takes in the reports waiting in results.
func (r *run) drain() {
	for {
		select {
		case res := <-r.results:
			r.settle(res)
		default:
			return
		}
	}
}

// stop waits for the attempts under way, then makes one last try at
// recording the outcomes still held: what fails now is sent again after a
// restart.
func (r *run) stop() {
	r.wg.Wait()
	r.drain()
	for _, o := range r.held {
		if err := r.w.record(r.bg, o); err != nil {
			o.log.Error().Err(err).Str("outcome", o.kind.String()).
				Msg(r.w.noun() + " outcome lost at shutdown: it will be sent again")
			continue
		}
		r.w.logOutcome(o, true)
	}
	if len(r.delivered) == 0 {
		return
	}
	if _, err := r.settling.DeliveredThenDue(r.bg, r.deliveredIDs(), r.w.now(), 0, nil); err != nil {
		r.w.Log.Error().Err(err).Int("messages", len(r.delivered)).
			Msg(r.w.noun() + " deliveries not recorded at shutdown: they will be sent again")
		return
	}
	r.settled()
}

// attempt sends m once and records the outcome in the queue, unless
// deferDelivered is set and m was sent or skipped: that outcome is left
// for the SettlingQueue's next read (result.deferred). It returns the
// outcome, and the queue's error if it could not be recorded.
func (w *Worker) attempt(ctx context.Context, m link.Message, deferDelivered bool) result {
	log := w.Log.With().Str("id", m.ID).Str("type", m.Type).Int("attempt", m.Attempts+1).Logger()
	start := w.now()
	err := w.send(context.WithValue(ctx, attemptLog{}, &log), m)
	now := w.now()
	log.UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Dur("took", now.Sub(start)) })
	o := w.judge(m, err, now)
	o.log = &log
	if deferDelivered && (o.kind == outcomeSent || o.kind == outcomeSkipped) {
		return result{o: o, deferred: true}
	}
	if err := w.record(ctx, o); err != nil {
		return result{o: o, err: err}
	}
	w.logOutcome(o, false)
	return result{o: o}
}

// send calls Send, turning a panic into a failure to retry.
func (w *Worker) send(ctx context.Context, m link.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("send panicked: %v", p)
		}
	}()
	return w.Send(ctx, m)
}

// judge decides what becomes of m after an attempt that returned err.
func (w *Worker) judge(m link.Message, err error, now time.Time) outcome {
	o := outcome{id: m.ID, key: m.Key, attempts: m.Attempts + 1}
	if err == nil {
		o.kind = outcomeSent
		return o
	}
	if reason, ok := skipReason(err); ok {
		o.kind, o.reason = outcomeSkipped, reason
		return o
	}
	o.reason = err.Error()
	if isPermanent(err) {
		o.kind = outcomeGivenUp
		return o
	}
	if age := now.Sub(m.Created); age >= w.retryFor() {
		o.kind = outcomeGivenUp
		o.reason = fmt.Sprintf("gave up after %d attempts over %s: %s", o.attempts, age.Round(time.Second), err)
		return o
	}
	o.kind, o.next = outcomeRetry, now.Add(w.backoff(m.Attempts))
	return o
}

// record writes an outcome to the queue.
func (w *Worker) record(ctx context.Context, o outcome) error {
	switch o.kind {
	case outcomeSent, outcomeSkipped:
		return w.Queue.Delivered(ctx, o.id)
	case outcomeRetry:
		return w.Queue.Reschedule(ctx, o.id, o.attempts, o.next, o.reason)
	default:
		return w.Queue.GiveUp(ctx, o.id, o.reason)
	}
}

// logOutcome logs a recorded outcome; late marks one recorded after the
// store recovered.
func (w *Worker) logOutcome(o outcome, late bool) {
	if w.Observe != nil {
		w.Observe([...]string{"sent", "skipped", "retry", "gave_up"}[o.kind])
	}
	var e *zerolog.Event
	switch o.kind {
	case outcomeSent:
		e = o.log.Info()
	case outcomeSkipped:
		e = o.log.Info().Str("reason", o.reason)
	case outcomeRetry:
		e = o.log.Warn().Str("error", o.reason).Time("retry_at", o.next)
	default:
		e = o.log.Error().Str("error", o.reason)
	}
	if late {
		e = e.Bool("recorded_late", true)
	}
	e.Msg(w.noun() + " " + o.kind.verb())
}

// backoff returns the delay after the given number of failures.
func (w *Worker) backoff(failures int) time.Duration {
	first, ceiling := w.Backoff, w.MaxBackoff
	if first <= 0 {
		first = defaultBackoff
	}
	if ceiling <= 0 {
		ceiling = defaultMaxBackoff
	}
	return Backoff(failures, first, ceiling)
}

// noun returns Noun or its default.
func (w *Worker) noun() string {
	if w.Noun != "" {
		return w.Noun
	}
	return "message"
}

// maxInFlight returns MaxInFlight or its default.
func (w *Worker) maxInFlight() int {
	if w.MaxInFlight > 0 {
		return w.MaxInFlight
	}
	return defaultMaxInFlight
}

// pollEvery returns PollEvery or its default.
func (w *Worker) pollEvery() time.Duration {
	if w.PollEvery > 0 {
		return w.PollEvery
	}
	return defaultPollEvery
}

// retryFor returns RetryFor or its default.
func (w *Worker) retryFor() time.Duration {
	if w.RetryFor > 0 {
		return w.RetryFor
	}
	return defaultRetryFor
}

// now returns the current time from Now, or the clock.
func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}
