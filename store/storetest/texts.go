package storetest

import (
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// ReceiptTexts are n receipt texts created at at, each to a phone of its
// own: a busy text worker's queue, as the backends' benchmarks fill it.
func ReceiptTexts(n int, at time.Time) []link.Text {
	texts := make([]link.Text, 0, n)
	for i := range n {
		texts = append(texts, link.Text{ID: fmt.Sprintf("txt_%02d", i), Kind: link.TextReply, To: fmt.Sprintf("+2348031%06d", i),
			Data: map[string]string{"text": "Your account is linked. Reference 8f2c1a."}, Created: at})
	}
	return texts
}
