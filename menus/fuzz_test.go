package menus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/link"
)

// FuzzConversation walks a session with arbitrary inputs, separated by
// "|": repeats, hostile text and random choices. The engine never panics,
// fails only with a HopError, and every screen fits the budget in GSM-7.
func FuzzConversation(f *testing.F) {
	for _, seed := range []string{
		"1|user_good|pass_good",
		"98|98|0|zen|1|2|user_good|1234",
		"1|user_otp|pass_good|000000|123456",
		"1|user_multi|pass_good|9|2",
		"1|user_question|pass_good|lagos",
		"stanbic|1|user_good|pass_good|12ab|1234",
		"1|user_slow|pass_good|1|1|0",
		"0",
		"1|user_good|p*ss #x|user_good|\x00|\xff",
		"qqq|||98|98|98|98|98|0|0|0",
	} {
		f.Add(seed, uint8(0))
	}
	r := newRig(f, slowBank(20*time.Millisecond, time.Second))
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, script string, repeatEvery uint8) {
		id := n.Add(1)
		session, phone := fmt.Sprintf("fz-%d", id), fmt.Sprintf("+2347%08d", id)
		transcript := ""
		hop := func() {
			rep, err := r.engine.Handle(context.Background(), link.Hop{SessionID: session, Phone: phone, Transcript: transcript, Cumulative: true})
			var he *link.HopError
			if err != nil && !errors.As(err, &he) {
				t.Fatalf("hop %q failed: %v", transcript, err)
			}
			if err == nil && (gsm.Units(rep.Text) > 160 || !gsm.Valid(rep.Text)) {
				t.Fatalf("screen %q over budget or not GSM-7", rep.Text)
			}
		}
		hop()
		for i, in := range strings.Split(script, "|") {
			if i >= 12 {
				break
			}
			if i == 0 {
				transcript = in
			} else {
				transcript += "*" + in
			}
			hop()
			if repeatEvery > 0 && i%int(repeatEvery) == 0 {
				hop() // the aggregator delivers it again
			}
		}
	})
}
