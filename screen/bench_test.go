package screen

import (
	"fmt"
	"testing"
)

// BenchmarkRender measures fitting a bank list of 30 names into a 160-unit
// screen, first and middle page. Run with -benchmem.
func BenchmarkRender(b *testing.B) {
	items := make([]string, 30)
	for i := range items {
		items[i] = fmt.Sprintf("Bank number %d of Nigeria", i+1)
	}
	for _, offset := range []int{0, 12} {
		b.Run(fmt.Sprintf("offset=%d", offset), func(b *testing.B) {
			s := Screen{Title: textChooseBank, Items: items, Offset: offset, Back: offset > 0}
			b.ReportAllocs()
			for range b.N {
				s.Render(160)
			}
		})
	}
}
