// Package reqid names each callback with a request id that follows what
// it causes: the hop's log line, the Mono calls it makes (the X-Request-Id
// header, also when the work outlives the hop) and the partner webhooks
// queued by it. An operator greps one id to see one hop end to end.
package reqid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// Header is the HTTP header a request id travels in.
const Header = "X-Request-Id"

// Source makes request ids unique to this process: a random prefix drawn
// at start, then a counter. It is safe for concurrent use.
type Source struct {
	prefix string
	n      atomic.Uint64
}

// NewSource returns a Source with a fresh random prefix.
func NewSource() *Source {
	b := make([]byte, 6)
	rand.Read(b)
	return &Source{prefix: hex.EncodeToString(b) + "-"}
}

// Next returns a new id, e.g. "3f9a0c1b2d4e-1f".
func (s *Source) Next() string {
	return s.prefix + strconv.FormatUint(s.n.Add(1), 36)
}

// key is the context key of a request id.
type key struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, key{}, id)
}

// From returns the request id ctx carries, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}
