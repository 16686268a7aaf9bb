package partner

import (
	"testing"
	"time"
)

func TestParseMonoEventReadsEitherShapeAndEitherCase(t *testing.T) {
	sent := time.Date(2026, 1, 27, 21, 0, 39, 588000000, time.UTC)
	updated := time.Date(2024, 9, 13, 9, 58, 0, 950000000, time.UTC)
	cases := []struct {
		name string
		body string
		want monoEvent
		ok   bool
	}{
		{"the older shape, the account's _id",
			`{"event":"mono.events.account_updated","data":{"account":{"_id":"acc-1","updated_at":"2024-09-13T09:58:00.950Z"},"meta":{"data_status":"available"}}}`,
			monoEvent{Name: "mono.events.account_updated", Kind: monoAccountUpdated, At: updated, Account: "acc-1", DataStatus: "AVAILABLE"}, true},
		{"the newer shape: event_id, timestamp, app and business",
			`{"event":"mono.events.account_updated","event_id":"evt_1","timestamp":"2026-01-27T21:00:39.588Z",
			  "data":{"account":{"_id":"acc-1"},"meta":{"data_status":"PARTIAL","sync_status":"failed"},"app":"68cb","business":"68ca"}}`,
			monoEvent{Name: "mono.events.account_updated", Kind: monoAccountUpdated, ID: "evt_1", Sent: sent, At: sent, Account: "acc-1",
				DataStatus: "PARTIAL", SyncStatus: "FAILED"}, true},
		{"camelCase names of the fields",
			`{"event":"mono.events.account_updated","eventId":"evt_2","data":{"account":{"id":"acc-1","updatedAt":"2024-09-13T09:58:00.950Z"},
			  "meta":{"dataStatus":"AVAILABLE","syncStatus":"REAUTHORISATION_REQUIRED"}}}`,
			monoEvent{Name: "mono.events.account_updated", Kind: monoAccountUpdated, ID: "evt_2", At: updated, Account: "acc-1",
				DataStatus: "AVAILABLE", SyncStatus: "REAUTHORISATION_REQUIRED"}, true},
		{"account_connected: the id in data.id",
			`{"event":"mono.events.account_connected","data":{"id":"acc-1","customer":"cus-1","meta":{}}}`,
			monoEvent{Name: "mono.events.account_connected", Kind: monoAccountConnected, Account: "acc-1"}, true},
		{"account_unlinked: the id in data.account.id",
			`{"event":"mono.events.account_unlinked","data":{"account":{"id":"acc-1"}}}`,
			monoEvent{Name: "mono.events.account_unlinked", Kind: monoAccountUnlinked, Account: "acc-1"}, true},
		{"the British spelling of account_reauthorized",
			`{"event":"mono.events.account_reauthorised","data":{"account":{"_id":"acc-1"}}}`,
			monoEvent{Name: "mono.events.account_reauthorised", Kind: monoAccountReauthorized, Account: "acc-1"}, true},
		{"a jobs event: the account a bare id, data.id the job's",
			`{"event":"mono.accounts.jobs.update","data":{"account":"acc-1","id":"job-1","status":"finished"}}`,
			monoEvent{Name: "mono.accounts.jobs.update", Account: "acc-1"}, true},
		{"members of unexpected types are missing, not an error",
			`{"event":"mono.events.account_updated","event_id":7,"timestamp":"yesterday","data":{"account":["acc-1"],"meta":"AVAILABLE"}}`,
			monoEvent{Name: "mono.events.account_updated", Kind: monoAccountUpdated}, true},
		{"data that is not an object names no account",
			`{"event":"mono.events.sync_failed","data":"acc-1"}`,
			monoEvent{Name: "mono.events.sync_failed", Kind: monoSyncFailed}, true},
		{"no event name is not an event", `{"data":{"account":{"_id":"acc-1"}}}`, monoEvent{}, false},
		{"an event name that is not a string is not an event", `{"event":1}`, monoEvent{}, false},
		{"JSON that is not an object is not an event", `["mono.events.account_updated"]`, monoEvent{}, false},
		{"a body that is not JSON is not an event", `{"event":`, monoEvent{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := parseMonoEvent([]byte(c.body))
			if ok != c.ok || (ok && got != c.want) {
				t.Errorf("parseMonoEvent = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}
