package ussd

import (
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ussdlink/ussdlink/link"
)

// Hubtel speaks Hubtel's Programmable Services (Ghana): a JSON POST with
// Type (Initiation, Response, Release, Timeout), Mobile, SessionId,
// ServiceCode, Message (the dialled string on Initiation, then only the
// latest input), Operator, Sequence and ClientState; the reply is JSON
// {Type: Response|Release, Message, ClientState}.
type Hubtel struct{}

var _ Dialect = Hubtel{}

// hubtelRequest is Hubtel's callback body.
type hubtelRequest struct {
	Type        string `json:"Type"`
	Mobile      string `json:"Mobile"`
	SessionID   string `json:"SessionId"`
	ServiceCode string `json:"ServiceCode"`
	Message     string `json:"Message"`
	Operator    string `json:"Operator"`
	Sequence    any    `json:"Sequence"`
	ClientState string `json:"ClientState"`
}

// hubtelReply is the answer Hubtel expects.
type hubtelReply struct {
	Type        string `json:"Type"`
	Message     string `json:"Message"`
	ClientState string `json:"ClientState"`
}

// Name implements Dialect.
func (Hubtel) Name() string { return "hubtel" }

// Method implements Dialect.
func (Hubtel) Method() string { return fiber.MethodPost }

// Parse implements Dialect. Release (the user ended) and Timeout (an answer
// came too late) close the session; Hubtel ignores any answer to them. The
// dialled string of an Initiation is checked like any input.
func (Hubtel) Parse(c *fiber.Ctx) (link.Hop, error) {
	var r hubtelRequest
	if err := decodeJSON(c, &r); err != nil {
		return link.Hop{}, err
	}
	hop := link.Hop{
		SessionID:   strings.TrimSpace(r.SessionID),
		Phone:       strings.TrimSpace(r.Mobile),
		ServiceCode: strings.TrimSpace(r.ServiceCode),
		Network:     strings.ToLower(strings.TrimSpace(r.Operator)),
		Seq:         sequence(r.Sequence),
	}
	switch strings.ToLower(strings.TrimSpace(r.Type)) {
	case "initiation":
		if err := checkDialled(r.Message); err != nil {
			return hop, err
		}
		hop.New = true
		hop.Dialled = strings.TrimSpace(r.Message)
	case "response":
		hop.Input = r.Message
	case "release":
		hop.Closing = "Release"
	case "timeout":
		hop.Closing = "Timeout"
	default:
		return hop, &BadRequest{Reason: "unknown Type"}
	}
	if hop.SessionID == "" || hop.Phone == "" {
		return hop, &BadRequest{Reason: "missing SessionId or Mobile"}
	}
	return hop, nil
}

// Write implements Dialect. ClientState carries the hop's Sequence back, so
// Hubtel's round trip of it can be checked in its logs.
func (Hubtel) Write(c *fiber.Ctx, hop link.Hop, r link.Reply) error {
	kind := "Response"
	if r.End {
		kind = "Release"
	}
	return c.JSON(hubtelReply{Type: kind, Message: r.Text, ClientState: "seq:" + strconv.Itoa(hop.Seq)})
}

// sequence reads a hop number sent as a number or a string; 0 if neither.
func sequence(v any) int {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }:
		i, _ := n.Int64()
		return int(max(i, 0))
	case string:
		i, _ := strconv.Atoi(strings.TrimSpace(n))
		return max(i, 0)
	}
	return 0
}
