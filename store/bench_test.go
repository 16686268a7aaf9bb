package store_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store"
	"github.com/ussdlink/ussdlink/store/storetest"
)

// BenchmarkCommit measures one hop's commit to bbolt, fsync'd: a session
// record of a realistic size with sealed secrets, and a partner event, one
// commit at a time and from many goroutines at once (group commit). Run
// with -benchmem.
func BenchmarkCommit(b *testing.B) {
	for _, delay := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("batch-delay=%v/parallel", delay), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), benchSealer(b), store.WithBatchDelay(delay))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(8)
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("bench-%d", n.Add(1))
					r := fullRecord(id)
					ev := link.Event{ID: "msg_" + id, Type: link.TypeOpened, Timestamp: t0, Data: map[string]any{"session": id}}
					if err := db.Commit(ctx, link.Change{Session: r, Events: []link.Event{ev}}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// benchSealer is a sealer of a fixed key.
func benchSealer(b *testing.B) *seal.Sealer {
	b.Helper()
	s, err := seal.New(bytes.Repeat([]byte{0x42}, seal.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkTextQueueRead is a busy text worker's poll of its queue: 32
// texts in flight and 8 more due, read with Due (the worker asks for the
// ones in flight too, and skips them) and with DueExcept (they are left
// out unread). Run with -benchmem.
func BenchmarkTextQueueRead(b *testing.B) {
	db, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), benchSealer(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const inFlight, waiting = 32, 8
	texts := storetest.ReceiptTexts(inFlight+waiting, t0)
	if err := db.EnqueueTexts(ctx, texts...); err != nil {
		b.Fatal(err)
	}
	q := db.Texts()
	held := map[string]bool{}
	for _, t := range texts[:inFlight] {
		held[t.ID] = true
	}
	now := t0.Add(time.Minute)
	b.Run("Due", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if msgs, err := q.Due(ctx, now, inFlight+waiting+1); err != nil || len(msgs) != inFlight+waiting {
				b.Fatalf("Due = %d messages, %v", len(msgs), err)
			}
		}
	})
	b.Run("DueExcept", func(b *testing.B) {
		b.ReportAllocs()
		skip := func(id []byte) bool { return held[string(id)] }
		for b.Loop() {
			if msgs, err := q.DueExcept(ctx, now, waiting+1, skip); err != nil || len(msgs) != waiting {
				b.Fatalf("DueExcept = %d messages, %v", len(msgs), err)
			}
		}
	})
}
