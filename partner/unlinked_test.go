package partner

import (
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// Mono retries a webhook for up to 48 hours. An account_unlinked Mono sent
// (timestamp) before the account was linked again under the same id is
// about the old link: it must not unlink the new one, nor tell the partner
// the new link is gone. (The commit's own store test keeps a new link of an
// unlinked account linked; the webhook undoes that on a late delivery.)
func TestAnUnlinkingSentBeforeTheLinkLeavesTheLinkAlone(t *testing.T) {
	linkedAt := time.Date(2026, 1, 27, 22, 0, 0, 0, time.UTC)
	body := `{"event":"mono.events.account_unlinked","event_id":"evt_old","timestamp":"2026-01-27T21:00:39.588Z",
	  "data":{"account":{"id":"acc-1"}}}`
	ev, ok := parseMonoEvent([]byte(body))
	if !ok {
		t.Fatal("not an event")
	}
	h := &MonoWebhooks{Emits: func(string) bool { return true }}
	linked := &link.Link{AccountID: "acc-1", Phone: "+2348030000001", Linked: linkedAt}
	out, _ := h.apply(ev, linked, nil, linkedAt.Add(time.Hour))
	if !linked.Unlinked.IsZero() || len(out.Events) != 0 {
		t.Errorf("link relinked at %v unlinked at %v by an event sent at %v; events %v", linkedAt, linked.Unlinked, ev.Sent, out.Events)
	}
}
