package outbox

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
)

// Permanent marks a failure of Send that no retry will fix (the recipient
// or the request was refused for good): the message is given up to the dead
// letters at once, with err as its reason.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// permanentError is a failure not worth retrying.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Skip is what Send returns for a message that is not to be sent at all
// (its recipient opted out, its kind is switched off): it leaves the queue
// as if delivered, and the reason is logged.
func Skip(reason string) error {
	return &skipped{reason}
}

// skipped is a message deliberately not sent.
type skipped struct{ reason string }

func (e *skipped) Error() string { return "not sent: " + e.reason }

// isPermanent reports whether err says a retry is pointless.
func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// skipReason returns why Send chose not to send, if it did.
func skipReason(err error) (string, bool) {
	var s *skipped
	if errors.As(err, &s) {
		return s.reason, true
	}
	return "", false
}

// Backoff returns the delay before the attempt that follows the given
// number of failures: first doubled per earlier failure, capped at ceiling,
// with equal jitter (half fixed, half random) so that it always grows with
// the failures yet spreads the retries of many messages apart. It never
// overflows, however many the failures.
func Backoff(failures int, first, ceiling time.Duration) time.Duration {
	first = min(first, ceiling)
	if first <= 0 {
		return 0
	}
	for i := 0; i < failures && first < ceiling; i++ {
		if first > ceiling/2 {
			first = ceiling
		} else {
			first *= 2
		}
	}
	half := first / 2
	return first - half + rand.N(half+1)
}

// attemptLog carries the logger of one attempt through Send's context.
type attemptLog struct{}

// Logger returns the logger of the attempt under way in ctx: the worker's,
// with the message's id, type and attempt number. Send may add fields to it
// (with UpdateContext) that the worker's line about the outcome then
// carries, such as a provider's id for the message. It is never nil.
func Logger(ctx context.Context) *zerolog.Logger {
	if l, ok := ctx.Value(attemptLog{}).(*zerolog.Logger); ok {
		return l
	}
	nop := zerolog.Nop()
	return &nop
}
