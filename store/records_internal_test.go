package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

func TestQueuedMessagesReadInEitherFormat(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	want := link.Message{ID: "msg_1", Type: "ACCOUNT_LINKED", Body: []byte(`{"type":"ACCOUNT_LINKED"}`), Created: at,
		Attempts: 2, Next: at.Add(time.Minute), LastErr: "503", Key: "s1", Seq: 7}
	current, err := encodeMessage(&want)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"as queued now", current},
		{"as queued before, in JSON", legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got link.Message
			if err := decodeMessage(tt.data, &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read back %+v, want %+v", got, want)
			}
		})
	}
	for _, bad := range [][]byte{nil, current[:len(current)/2], {recordMsgpack, 0xc1}} {
		if err := decodeMessage(bad, new(link.Message)); err == nil {
			t.Errorf("%q decoded without an error", bad)
		}
	}
}
