package menus

import (
	"context"
	"fmt"
	"testing"

	"github.com/ussdlink/ussdlink/link"
)

// BenchmarkHop measures the engine's hop path on an in-memory store against
// the sandbox over loopback HTTP: a whole link flow (dial, bank, user
// name, password) per iteration, and a repeated callback answered from the
// stored reply. Run with -benchmem.
func BenchmarkHop(b *testing.B) {
	r := newRig(b)
	ctx := context.Background()
	hop := func(id, transcript string) {
		if _, err := r.engine.Handle(ctx, link.Hop{SessionID: id, Phone: "+2348030000001", ServiceCode: "*384*123#",
			Transcript: transcript, Cumulative: true}); err != nil {
			b.Fatal(err)
		}
	}
	flows := 0 // across the runs the benchmark makes: every flow a new session
	b.Run("flow", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			flows++
			id := fmt.Sprintf("bench-%d", flows)
			for _, t := range []string{"", "1", "1*user_good", "1*user_good*pass_good"} {
				hop(id, t)
			}
		}
	})
	b.Run("repeat", func(b *testing.B) {
		flows++
		id := fmt.Sprintf("repeat-%d", flows)
		hop(id, "")
		hop(id, "1")
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			hop(id, "1")
		}
	})
}
