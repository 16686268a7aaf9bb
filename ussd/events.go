package ussd

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ussdlink/ussdlink/menus"
)

// AfricasTalkingEvents serves Africa's Talking's session-end notification:
// the session is closed with the reported status (Success, Incomplete,
// Failed) and its errorMessage is recorded. The notification's input field
// holds everything the user typed, passwords included: it is never read.
func (e Edge) AfricasTalkingEvents() fiber.Handler {
	log := e.Log.With().Str("dialect", "africastalking").Logger()
	return func(c *fiber.Ctx) error {
		hop := menus.Hop{
			SessionID: field(c, "sessionId"),
			Phone:     field(c, "phoneNumber"),
			Closing:   field(c, "status"),
		}
		if hop.SessionID == "" || hop.Phone == "" {
			log.Warn().Msg("malformed session-end notification")
			return c.Status(fiber.StatusBadRequest).SendString("bad request")
		}
		if hop.Closing == "" {
			hop.Closing = "Ended"
		}
		detail := strings.Clone(c.FormValue("errorMessage"))
		if err := e.Conv.Close(c.UserContext(), hop, detail); err != nil {
			log.Warn().Err(err).Str("session", hop.SessionID).Msg("close session")
			var bad *menus.HopError
			if errors.As(err, &bad) {
				return c.Status(fiber.StatusBadRequest).SendString("bad request")
			}
			return c.Status(fiber.StatusInternalServerError).SendString("try again")
		}
		return c.SendString("OK")
	}
}
