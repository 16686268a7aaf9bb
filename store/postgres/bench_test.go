package postgres

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/seal"
	"github.com/ussdlink/ussdlink/store/postgres/pgtest"
	"github.com/ussdlink/ussdlink/store/storetest"
)

// BenchmarkTextQueueClaim is a busy text worker's read of its queue: 32
// texts in flight, 8 waiting. Due hands the worker its own in flight
// again with the 8; a claim told what it holds reads the 8 alone.
func BenchmarkTextQueueClaim(b *testing.B) {
	sealer, err := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	db, err := Open(context.Background(), pgtest.URL(b), sealer)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const inFlight, waiting = 32, 8
	texts := storetest.ReceiptTexts(inFlight+waiting, qt0)
	if err := db.EnqueueTexts(ctx, texts...); err != nil {
		b.Fatal(err)
	}
	q := db.Texts()
	now := qt0.Add(time.Minute)
	if msgs, err := q.Due(ctx, now, inFlight); err != nil || len(msgs) != inFlight { // in flight from now on
		b.Fatalf("first claim: %d messages, %v", len(msgs), err)
	}
	var held []string
	for _, t := range texts[:inFlight] {
		held = append(held, t.ID)
	}
	for _, c := range []struct {
		name string
		max  int
		held []string
		want int
	}{
		{"Due", inFlight + waiting + 1, nil, inFlight + waiting},
		{"held left out", waiting + 1, held, waiting},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if msgs, err := q.DeliveredThenDue(ctx, nil, now, c.max, c.held); err != nil || len(msgs) != c.want {
					b.Fatalf("claim: %d messages, %v; want %d", len(msgs), err, c.want)
				}
			}
		})
	}
}
