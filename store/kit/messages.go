package kit

import (
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/wirejson"
)

// MaxKey bounds an ordering key, so that its length fits the order index.
// A longer key is cut: two such keys sharing a long prefix then share an
// order, which may delay a message but never reorders one.
const MaxKey = 1 << 10

// EventMessages turns events into outbox messages, due at once, each keyed
// by the link it is about.
func EventMessages(events []link.Event) ([]link.Message, error) {
	out := make([]link.Message, 0, len(events))
	for _, e := range events {
		body, err := wirejson.Marshal(struct {
			Type      string         `json:"type"`
			Timestamp time.Time      `json:"timestamp"`
			Data      map[string]any `json:"data"`
			RequestID string         `json:"request_id,omitempty"`
		}{e.Type, e.Timestamp.UTC(), e.Data, e.RequestID})
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.Type, err)
		}
		out = append(out, link.Message{ID: e.ID, Type: e.Type, Body: body, Created: e.Timestamp, Next: e.Timestamp, Key: EventKey(e)})
	}
	return out, nil
}

// EventKey orders the events about one link: its account id when the event
// names one, else the session that produced it; else none.
func EventKey(e link.Event) string {
	if id, _ := e.Data["account_id"].(string); id != "" {
		return "account:" + id
	}
	if id, _ := e.Data["session"].(string); id != "" {
		return "session:" + id
	}
	return ""
}

// TextMessages turns text intents into queue messages, due at once, keyed
// by the phone they go to.
func TextMessages(texts []link.Text) ([]link.Message, error) {
	out := make([]link.Message, 0, len(texts))
	for _, t := range texts {
		body, err := wirejson.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("encode text %s: %w", t.Kind, err)
		}
		var key string
		if phone := link.PhoneKey(t.To); phone != "" {
			key = "phone:" + phone
		}
		out = append(out, link.Message{ID: t.ID, Type: t.Kind, Body: body, Created: t.Created, Next: t.Created, Key: key})
	}
	return out, nil
}
