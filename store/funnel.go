package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// bucketFunnel holds the drop-off funnel's daily counters, keyed grouping
// + 0 + UTC day (YYYY-MM-DD) + 0 + value + 0 + screen, so that one
// grouping's counters from a day on are one cursor walk, in (day, value,
// screen) order. They are kept after their sessions are swept and have no
// retention yet: days × groupings × values × screens, a few hundred small
// keys a day. Like every bucket it is created at open, so files of
// schema 3 written before it existed take it without a migration.
var bucketFunnel = []byte("funnel")

// WithFunnel makes Sweep count each session it deletes in the drop-off
// funnel: f is asked, in the sweep's transaction, for the entry of each
// record (given without its secrets, which the funnel never names), and a
// non-nil entry's counts are added before the record goes, in the same
// transaction. So a session abandoned mid-conversation is counted once,
// when it is swept, even across a crash. Without it Sweep counts nothing.
func WithFunnel(f link.FunnelOf) Option {
	return func(db *DB) { db.funnel = f }
}

// FunnelCounts returns the counters of one grouping (one of
// link.FunnelGroupings) from since's UTC day on, in (day, value, screen)
// order. Left is nil for a screen no session ended on.
func (db *DB) FunnelCounts(_ context.Context, since time.Time, by string) ([]link.FunnelCount, error) {
	if err := kit.FunnelGrouping(by); err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	var out []link.FunnelCount
	prefix := []byte(by + "\x00")
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFunnel).Cursor()
		start := append(bytes.Clone(prefix), kit.FunnelDay(since).Format(time.DateOnly)...)
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			count, err := decodeFunnel(k, v)
			if err != nil {
				return err
			}
			out = append(out, count)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read funnel counts: %w", err)
	}
	return out, nil
}

// addFunnel adds counts (as kit.FunnelCounts merged them) to the counters
// in tx, each read and written back: run again after a rollback, it adds
// them once more to what the rollback left, which is what it should.
func addFunnel(tx *bolt.Tx, counts []link.FunnelCount) error {
	funnel := tx.Bucket(bucketFunnel)
	for _, c := range counts {
		k := funnelKey(c)
		if v := funnel.Get(k); v != nil {
			held, ok := decodeCounts(v) // the key says what c already says
			if !ok {
				return malformedCounter(k)
			}
			held.Add(c)
			c = held
		}
		if err := funnel.Put(k, encodeFunnel(c)); err != nil {
			return fmt.Errorf("funnel counter %q: %w", k, err)
		}
	}
	return nil
}

// addFunnels adds the funnel counts the writes of one transaction carry
// to the counters in tx, summed (kit.SumCounters): a counter several of
// them add to, as the commits of sessions ending together mostly do (the
// same screens, groupings and day), is read, added to and written once.
// When that fails (a counter that cannot be read), it names the write to
// blame: the first whose own counts fail to be added too, tried one after
// the other in the transaction, which is rolled back anyway; the first
// that carries any when none fails alone.
func addFunnels(tx *bolt.Tx, ws []*write) (blame int, err error) {
	var lists [][]link.FunnelCount
	for _, w := range ws {
		if len(w.funnel) > 0 {
			lists = append(lists, w.funnel)
		}
	}
	if len(lists) == 0 {
		return 0, nil
	}
	if err = addFunnel(tx, kit.SumCounters(lists...)); err == nil {
		return 0, nil
	}
	first := -1
	for i, w := range ws {
		if len(w.funnel) == 0 {
			continue
		}
		if first < 0 {
			first = i
		}
		if addFunnel(tx, w.funnel) != nil {
			return i, err
		}
	}
	return first, err
}

// funnelKey is a counter's key in bucketFunnel.
func funnelKey(c link.FunnelCount) []byte {
	k := make([]byte, 0, len(c.By)+len(c.Value)+len(c.Screen)+13)
	k = append(append(k, c.By...), 0)
	k = append(c.Day.UTC().AppendFormat(k, time.DateOnly), 0)
	k = append(append(k, c.Value...), 0)
	return append(k, c.Screen...)
}

// funnelFormat is the first byte of a stored counter: the encoding below.
const funnelFormat = 0x01

// encodeFunnel encodes a counter's counts (its key holds the rest): the
// format byte, then varints: reached, the number of seconds buckets and
// each, the number of reasons and each (its length, its bytes, its count),
// reasons in order.
func encodeFunnel(c link.FunnelCount) []byte {
	out := make([]byte, 0, 2+2*len(c.Seconds)+16*len(c.Left))
	out = append(out, funnelFormat)
	out = binary.AppendVarint(out, int64(c.Reached))
	out = binary.AppendUvarint(out, uint64(len(c.Seconds)))
	for _, n := range c.Seconds {
		out = binary.AppendVarint(out, int64(n))
	}
	out = binary.AppendUvarint(out, uint64(len(c.Left)))
	reasons := maps.Keys(c.Left)
	if len(c.Left) > 1 {
		reasons = slices.Values(slices.Sorted(reasons)) // one or none, as nearly always: in order already
	}
	for r := range reasons {
		out = binary.AppendUvarint(out, uint64(len(r)))
		out = append(out, r...)
		out = binary.AppendVarint(out, int64(c.Left[r]))
	}
	return out
}

// errFunnelRecord says a stored counter cannot be read.
var errFunnelRecord = errors.New("malformed funnel counter")

// malformedCounter is the error of the counter stored under k that cannot
// be read.
func malformedCounter(k []byte) error { return fmt.Errorf("funnel counter %q: %w", k, errFunnelRecord) }

// decodeFunnel reads the counter stored under k. Its seconds come back with
// kit.FunnelSeconds' length, its Left nil when no session ended there.
func decodeFunnel(k, v []byte) (link.FunnelCount, error) {
	c, ok := decodeCounts(v)
	parts := bytes.SplitN(k, []byte{0}, 4)
	if !ok || len(parts) != 4 {
		return link.FunnelCount{}, malformedCounter(k)
	}
	day, err := time.Parse(time.DateOnly, string(parts[1]))
	if err != nil {
		return link.FunnelCount{}, malformedCounter(k)
	}
	c.By, c.Day, c.Value, c.Screen = string(parts[0]), day, string(parts[2]), string(parts[3])
	return c, nil
}

// decodeCounts reads a stored counter's counts (encodeFunnel's), leaving
// what its key holds unset, or false when v is malformed.
func decodeCounts(v []byte) (link.FunnelCount, bool) {
	var c link.FunnelCount
	if len(v) == 0 || v[0] != funnelFormat {
		return c, false
	}
	r := funnelReader{v: v[1:], ok: true}
	c.Reached = int(r.varint())
	seconds := make([]int, r.length())
	for i := range seconds {
		seconds[i] = int(r.varint())
	}
	c.Seconds = kit.FunnelSeconds(seconds)
	for n := r.length(); n > 0 && r.ok; n-- {
		reason := string(r.bytes(r.length()))
		if c.Left == nil {
			c.Left = map[string]int{}
		}
		c.Left[reason] += int(r.varint())
	}
	return c, r.ok && len(r.v) == 0
}

// funnelReader reads a stored counter's varints, remembering whether one
// was cut short.
type funnelReader struct {
	v  []byte
	ok bool
}

// varint reads a signed varint; 0 once anything was malformed.
func (r *funnelReader) varint() int64 {
	n, size := binary.Varint(r.v)
	if size <= 0 {
		r.v, r.ok = nil, false
		return 0
	}
	r.v = r.v[size:]
	return n
}

// length reads an unsigned varint that counts what follows: at most the
// bytes left, since each thing counted takes at least one.
func (r *funnelReader) length() int {
	n, size := binary.Uvarint(r.v)
	if size <= 0 || n > uint64(len(r.v)-size) {
		r.v, r.ok = nil, false
		return 0
	}
	r.v = r.v[size:]
	return int(n)
}

// bytes reads n bytes.
func (r *funnelReader) bytes(n int) []byte {
	if n > len(r.v) {
		r.v, r.ok = nil, false
		return nil
	}
	out := r.v[:n]
	r.v = r.v[n:]
	return out
}
