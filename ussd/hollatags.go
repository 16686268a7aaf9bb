package ussd

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ussdlink/ussdlink/link"
)

// HollaTags speaks HollaTags' USSD callback (Nigeria): a GET with query
// session_msisdn, session_operation (begin, continue, end), session_msg
// (the latest input), session_id, session_from (the USSD code),
// session_type and session_mno; the reply is JSON with session_operation
// (continue or end), session_type (1 continues, 4 ends), session_id and
// session_msg.
type HollaTags struct{}

var _ Dialect = HollaTags{}

// hollaTagsReply is the answer HollaTags expects.
type hollaTagsReply struct {
	Operation string `json:"session_operation"`
	Type      int    `json:"session_type"`
	SessionID string `json:"session_id"`
	Msg       string `json:"session_msg"`
}

// Name implements Dialect.
func (HollaTags) Name() string { return "hollatags" }

// Method implements Dialect.
func (HollaTags) Method() string { return fiber.MethodGet }

// Parse implements Dialect. The message of a begin (the dialled string) is
// checked like any input.
func (HollaTags) Parse(c *fiber.Ctx) (link.Hop, error) {
	op := strings.ToLower(strings.TrimSpace(c.Query("session_operation")))
	hop := link.Hop{
		SessionID:   strings.TrimSpace(strings.Clone(c.Query("session_id"))),
		Phone:       strings.TrimSpace(strings.Clone(c.Query("session_msisdn"))),
		ServiceCode: strings.TrimSpace(strings.Clone(c.Query("session_from"))),
		Network:     strings.ToLower(strings.TrimSpace(strings.Clone(c.Query("session_mno")))),
	}
	msg := strings.Clone(c.Query("session_msg"))
	switch op {
	case "begin":
		if err := checkDialled(msg); err != nil {
			return hop, err
		}
		hop.New = true
		if strings.HasPrefix(strings.TrimSpace(msg), "*") {
			hop.Dialled = strings.TrimSpace(msg)
		}
	case "continue":
		hop.Input = msg
	case "end":
		hop.Closing = "End"
	default:
		return hop, &BadRequest{Reason: "unknown session_operation"}
	}
	if hop.SessionID == "" || hop.Phone == "" {
		return hop, &BadRequest{Reason: "missing session_id or session_msisdn"}
	}
	return hop, nil
}

// Write implements Dialect.
func (HollaTags) Write(c *fiber.Ctx, hop link.Hop, r link.Reply) error {
	out := hollaTagsReply{Operation: "continue", Type: 1, SessionID: hop.SessionID, Msg: r.Text}
	if r.End {
		out.Operation, out.Type = "end", 4
	}
	return c.JSON(out)
}
