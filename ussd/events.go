package ussd

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/ussdlink/ussdlink/link"
)

// AfricasTalkingEvents serves Africa's Talking's session-end notification:
// the session is closed with the reported status (Success, Incomplete,
// Failed) and its errorMessage is recorded. The notification's input field
// holds everything the user typed, passwords included: it is never read. The
// phone is read into E.164 like a hop's; one that is not a phone number is
// refused (there is no screen to show).
func (e Edge) AfricasTalkingEvents() fiber.Handler {
	log := e.Log.With().Str("dialect", "africastalking").Logger()
	return func(c *fiber.Ctx) error {
		hop := link.Hop{
			SessionID: field(c, "sessionId"),
			Phone:     field(c, "phoneNumber"),
			Closing:   field(c, "status"),
		}
		if hop.SessionID == "" || hop.Phone == "" {
			log.Warn().Msg("malformed session-end notification")
			return badRequest(c, &BadRequest{Reason: "missing sessionId or phoneNumber"})
		}
		e164, err := e.Phones.FromNetwork(hop.Phone)
		if err != nil {
			log.Warn().Str("session", hop.SessionID).Msg("session end for a phone that is not a phone number")
			return badRequest(c, errBadPhone)
		}
		hop.Phone = e164
		if hop.Closing == "" {
			hop.Closing = "Ended"
		}
		detail := strings.Clone(c.FormValue("errorMessage"))
		if err := e.Conv.Close(c.UserContext(), hop, detail); err != nil {
			log.Warn().Err(err).Str("session", hop.SessionID).Msg("close session")
			var bad *link.HopError
			if errors.As(err, &bad) {
				return badRequest(c, err)
			}
			return c.Status(fiber.StatusInternalServerError).SendString("try again")
		}
		return c.SendString("OK")
	}
}
