// Package ussd is the telco edge: one Dialect per aggregator turns its
// callback into a menus.Hop and a menus.Reply back into its response format,
// and Handler serves a dialect on a Fiber route. It knows nothing of Mono or
// bank forms.
package ussd

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/menus"
)

// Dialect is one aggregator's wire format.
type Dialect interface {
	// Name is the dialect's route segment: /ussd/<name>.
	Name() string
	// Method is the HTTP method the aggregator calls with.
	Method() string
	// Parse reads a callback into a Hop. Strings are copied out of Fiber's
	// reused buffers. A *BadRequest error means the callback is malformed.
	Parse(c *fiber.Ctx) (menus.Hop, error)
	// Write sends the reply in the aggregator's format.
	Write(c *fiber.Ctx, hop menus.Hop, r menus.Reply) error
}

// Conversation answers hops; *menus.Engine is one.
type Conversation interface {
	Handle(ctx context.Context, hop menus.Hop) (menus.Reply, error)
}

var _ Conversation = (*menus.Engine)(nil)

// BadRequest is a malformed callback: a missing or unreadable field. Its
// message names the field, never its value.
type BadRequest struct{ Reason string }

// Error implements error.
func (e *BadRequest) Error() string { return "bad callback: " + e.Reason }

// textTrouble is the END screen when the gateway itself fails.
const textTrouble = "Sorry, something went wrong. Nothing was linked. Please try again later."

// Handler serves one dialect: parse, converse, reply. A malformed callback
// gets a 400 and changes nothing; an internal failure gets a polite END
// screen, and the error is logged without anything the user typed.
func Handler(d Dialect, conv Conversation, log zerolog.Logger) fiber.Handler {
	log = log.With().Str("dialect", d.Name()).Logger()
	return func(c *fiber.Ctx) error {
		hop, err := d.Parse(c)
		if err != nil {
			log.Warn().Err(err).Msg("malformed callback")
			return c.Status(fiber.StatusBadRequest).SendString("bad request")
		}
		reply, err := conv.Handle(c.UserContext(), hop)
		var bad *menus.HopError
		switch {
		case errors.As(err, &bad):
			log.Warn().Err(err).Str("session", hop.SessionID).Msg("refused hop")
			return c.Status(fiber.StatusBadRequest).SendString("bad request")
		case err != nil:
			log.Error().Err(err).Str("session", hop.SessionID).Msg("hop failed")
			reply = menus.Reply{Text: textTrouble, End: true}
		}
		return d.Write(c, hop, reply)
	}
}

// Mount registers each dialect's handler at /ussd/<name>.
func Mount(r fiber.Router, conv Conversation, log zerolog.Logger, dialects ...Dialect) {
	for _, d := range dialects {
		r.Add(d.Method(), "/ussd/"+d.Name(), Handler(d, conv, log))
	}
}

// field returns a copy of a form or query value, trimmed of surrounding
// white space (never used for what the user typed).
func field(c *fiber.Ctx, name string) string {
	return strings.TrimSpace(strings.Clone(c.FormValue(name)))
}
