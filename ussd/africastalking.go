package ussd

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ussdlink/ussdlink/link"
)

// AfricasTalking speaks Africa's Talking's USSD callback: a form POST with
// sessionId, serviceCode, phoneNumber, networkCode and text, where text is
// the whole input history joined by "*"; the reply is text/plain starting
// "CON " (more to come) or "END ".
type AfricasTalking struct{}

var _ Dialect = AfricasTalking{}

// Name implements Dialect.
func (AfricasTalking) Name() string { return "africastalking" }

// Method implements Dialect.
func (AfricasTalking) Method() string { return fiber.MethodPost }

// Parse implements Dialect. The text is kept whole: the engine, not a split
// on "*", finds this hop's input in it, because a password may hold "*". An
// empty serviceCode is left empty, for the Edge to take as the configured
// one (some Africa's Talking test clients send none).
func (AfricasTalking) Parse(c *fiber.Ctx) (link.Hop, error) {
	hop := link.Hop{
		SessionID:   field(c, "sessionId"),
		Phone:       field(c, "phoneNumber"),
		ServiceCode: field(c, "serviceCode"),
		Network:     field(c, "networkCode"),
		Transcript:  strings.Clone(c.FormValue("text")),
		Cumulative:  true,
	}
	switch {
	case hop.SessionID == "":
		return hop, &BadRequest{Reason: "missing sessionId"}
	case hop.Phone == "":
		return hop, &BadRequest{Reason: "missing phoneNumber"}
	}
	return hop, nil
}

// Write implements Dialect.
func (AfricasTalking) Write(c *fiber.Ctx, _ link.Hop, r link.Reply) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	if r.End {
		return c.SendString("END " + r.Text)
	}
	return c.SendString("CON " + r.Text)
}
