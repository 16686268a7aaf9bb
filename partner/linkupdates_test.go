package partner

import (
	"reflect"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func TestLinkUpdatesTakesAnUpdateReceivedWithinTheWindow(t *testing.T) {
	linked := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	l := &link.Link{AccountID: "acc-1", Phone: testPhone, Institution: "inst-1", Bank: "GTBank",
		SessionID: "s-1", Reference: "ref-1", Linked: linked}
	emitting := func(typ string) bool { return typ == link.TypeDataStatus }
	silent := func(typ string) bool { return typ != link.TypeDataStatus }
	cases := []struct {
		name      string
		emits     func(string) bool
		received  time.Time
		status    string
		wantTake  bool
		wantEvent bool
	}{
		{"inside the window, DATA_STATUS emitted", emitting, linked.Add(-time.Minute), "AVAILABLE", true, true},
		{"inside the window, DATA_STATUS not emitted", silent, linked.Add(-time.Minute), "AVAILABLE", true, false},
		{"inside the window, no events configured", nil, linked.Add(-time.Minute), "AVAILABLE", true, false},
		{"after the link was made, before it committed", emitting, linked.Add(time.Minute), "PARTIAL", true, true},
		{"at the window's start", emitting, linked.Add(-LinkUpdateWindow), "AVAILABLE", true, true},
		{"just before the window", emitting, linked.Add(-LinkUpdateWindow - time.Nanosecond), "AVAILABLE", false, false},
		{"without a data status", emitting, linked.Add(-time.Minute), "", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := link.MonoUpdate{AccountID: l.AccountID, DataStatus: c.status, Received: c.received}
			before := *l
			take, events := LinkUpdates(c.emits)(l, u)
			if take != c.wantTake {
				t.Errorf("take = %v, want %v", take, c.wantTake)
			}
			if *l != before {
				t.Errorf("the link was changed: %+v, want %+v", *l, before)
			}
			if !c.wantEvent {
				if len(events) != 0 {
					t.Errorf("events = %+v, want none", events)
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("events = %+v, want one DATA_STATUS", events)
			}
			ev := events[0]
			if ev.ID == "" || ev.Type != link.TypeDataStatus || !ev.Timestamp.Equal(linked) {
				t.Errorf("event = %s %s at %v, want a DATA_STATUS with an id at the link's time %v", ev.ID, ev.Type, ev.Timestamp, linked)
			}
			want := map[string]any{"account_id": "acc-1", "phone": testPhone, "reference": "ref-1",
				"institution": map[string]any{"id": "inst-1", "name": "GTBank"}, "data_status": c.status}
			if !reflect.DeepEqual(ev.Data, want) {
				t.Errorf("event data = %v, want %v", ev.Data, want)
			}
		})
	}
}
