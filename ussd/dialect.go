// Package ussd is the telco edge: one Dialect per aggregator turns its
// callback into a menus.Hop and a menus.Reply back into its response format,
// and Handler serves a dialect on a Fiber route. It knows nothing of Mono or
// bank forms.
package ussd

import (
	"bytes"
	"context"
	"encoding/json"
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
	// Handle answers one hop.
	Handle(ctx context.Context, hop menus.Hop) (menus.Reply, error)
	// Close records that the aggregator ended a session; detail is its own
	// explanation, never what the user typed.
	Close(ctx context.Context, hop menus.Hop, detail string) error
}

var _ Conversation = (*menus.Engine)(nil)

// BadRequest is a malformed callback: a missing or unreadable field. Its
// message names the field, never its value.
type BadRequest struct{ Reason string }

// Error implements error.
func (e *BadRequest) Error() string { return "bad callback: " + e.Reason }

// Texts of the screens the edge itself answers with.
const (
	textTrouble = "Sorry, something went wrong. Nothing was linked. Please try again later."
	textTooFast = "Too many requests from this phone. Please wait a minute and dial again."
)

// Edge serves the telco routes: callback authentication first, then each
// dialect's handler, with a per-phone rate limit in between. Phones, not
// addresses, are limited: an aggregator sends every user's traffic from a
// few addresses.
type Edge struct {
	Conv      Conversation
	Log       zerolog.Logger
	Auth      CallbackAuth
	PhoneRate *Limiter // hops a minute per phone; nil: unlimited
	Limits    Limits   // screen budgets per dialect or network
}

// Mount registers each dialect's handler at /ussd/<name>, and Africa's
// Talking's session-end notification at /ussd/africastalking/events.
func (e Edge) Mount(r fiber.Router, dialects ...Dialect) {
	auth := e.Auth.Middleware(e.Log)
	for _, d := range dialects {
		r.Add(d.Method(), "/ussd/"+d.Name(), auth, e.Handler(d))
		if _, ok := d.(AfricasTalking); ok {
			r.Post("/ussd/africastalking/events", auth, e.AfricasTalkingEvents())
		}
	}
}

// Dialects are every aggregator the gateway speaks.
func Dialects() []Dialect {
	return []Dialect{AfricasTalking{}, Hubtel{}, Arkesel{}, Nalo{}, HollaTags{}}
}

// Mount registers dialects with no authentication and no rate limit.
func Mount(r fiber.Router, conv Conversation, log zerolog.Logger, dialects ...Dialect) {
	Edge{Conv: conv, Log: log}.Mount(r, dialects...)
}

// Handler serves one dialect with no authentication and no rate limit.
func Handler(d Dialect, conv Conversation, log zerolog.Logger) fiber.Handler {
	return Edge{Conv: conv, Log: log}.Handler(d)
}

// Handler serves one dialect: parse, converse, reply. A malformed callback
// gets a 400 and changes nothing; a phone over its rate gets a polite END
// and changes nothing; an internal failure gets a polite END screen, and the
// error is logged without anything the user typed.
func (e Edge) Handler(d Dialect) fiber.Handler {
	log := e.Log.With().Str("dialect", d.Name()).Logger()
	return func(c *fiber.Ctx) error {
		hop, err := d.Parse(c)
		if err != nil {
			log.Warn().Err(err).Msg("malformed callback")
			return c.Status(fiber.StatusBadRequest).SendString("bad request")
		}
		if hop.Closing != "" {
			if err := e.Conv.Close(c.UserContext(), hop, ""); err != nil {
				log.Warn().Err(err).Str("session", hop.SessionID).Msg("close session")
			}
			return d.Write(c, hop, menus.Reply{End: true})
		}
		hop.Limit = e.Limits.For(d.Name(), hop.Network)
		if !e.PhoneRate.Allow(hop.Phone) {
			log.Warn().Str("session", hop.SessionID).Msg("phone over its rate limit")
			return d.Write(c, hop, menus.Reply{Text: textTooFast, End: true})
		}
		reply, err := e.Conv.Handle(c.UserContext(), hop)
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

// Limits overrides the screen budget per dialect name or network code (a
// network's entry wins); 0 or missing keeps the engine's default.
type Limits map[string]int

// For returns the budget for a dialect and network, or 0.
func (l Limits) For(dialect, network string) int {
	if n := l[strings.ToLower(network)]; network != "" && n > 0 {
		return n
	}
	return l[dialect]
}

// decodeJSON reads a JSON body into v, refusing anything that is not one
// JSON object.
func decodeJSON(c *fiber.Ctx, v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return &BadRequest{Reason: "body is not the expected JSON object"}
	}
	return nil
}

// field returns a copy of a form or query value, trimmed of surrounding
// white space (never used for what the user typed).
func field(c *fiber.Ctx, name string) string {
	return strings.TrimSpace(strings.Clone(c.FormValue(name)))
}
