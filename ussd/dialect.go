// Package ussd is the telco edge: one Dialect per aggregator turns its
// callback into a link.Hop and a link.Reply back into its response format,
// and Handler serves a dialect on a Fiber route. It knows nothing of Mono or
// bank forms.
package ussd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/guard"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/phone"
	"github.com/ussdlink/ussdlink/reqid"
)

// Dialect is one aggregator's wire format.
type Dialect interface {
	// Name is the dialect's route segment: /ussd/<name>.
	Name() string
	// Method is the HTTP method the aggregator calls with.
	Method() string
	// Parse reads a callback into a Hop. Strings are copied out of Fiber's
	// reused buffers. A *BadRequest error means the callback is malformed.
	Parse(c *fiber.Ctx) (link.Hop, error)
	// Write sends the reply in the aggregator's format.
	Write(c *fiber.Ctx, hop link.Hop, r link.Reply) error
}

// Conversation answers hops; the conversation engine implements it.
type Conversation interface {
	// Handle answers one hop.
	Handle(ctx context.Context, hop link.Hop) (link.Reply, error)
	// Close records that the aggregator ended a session; detail is its own
	// explanation, never what the user typed.
	Close(ctx context.Context, hop link.Hop, detail string) error
}

// BadRequest is a malformed callback: a missing or unreadable field. Its
// Reason names the field, never its value, so it is safe to send back.
type BadRequest struct{ Reason string }

// Error implements error.
func (e *BadRequest) Error() string { return "bad callback: " + e.Reason }

// Texts of the screens the edge itself answers with.
const (
	textTrouble  = "Sorry, something went wrong. Nothing was linked. Please try again later."
	textTooFast  = "Too many requests from this phone. Please wait a minute and dial again."
	textBadPhone = "Sorry, this service cannot read your phone number, so it cannot link an account. Nothing was linked."
)

// Edge serves the telco routes: callback authentication first, then each
// dialect's handler, with a per-phone rate limit in between. Phones, not
// addresses, are limited: an aggregator sends every user's traffic from a
// few addresses. Every phone is read into E.164 first, so one subscriber is
// one phone to the rate limit and to everything behind it.
type Edge struct {
	Conv      Conversation
	Log       zerolog.Logger
	Auth      guard.CallbackAuth
	PhoneRate *guard.Limiter // hops a minute per phone; nil: unlimited
	Limits    Limits         // screen budgets per dialect or network
	// Phones reads callers' numbers into E.164; its zero value takes only
	// international numbers.
	Phones phone.Numbers
	// ServiceCode is the configured short code, taken for a callback that
	// names none (some Africa's Talking test clients send no serviceCode).
	ServiceCode string
	// IDs names each callback with a request id (logged, and sent on the
	// Mono calls the hop makes); nil: none.
	IDs *reqid.Source
	// Observer, when set, hears every answered hop and every refusal (for
	// metrics).
	Observer Observer
	// Say, when set, words the edge's own ENDs (a key of package lang) in
	// the default language: the edge reads no phone's choice, so a refusal
	// costs no store read. Unset: English.
	Say func(key string) string
}

// say is the edge's END for key, or english without Say.
func (e Edge) say(key, english string) string {
	if e.Say == nil {
		return english
	}
	return e.Say(key)
}

// Observer hears what the edge answered: a hop's dialect, network, the
// screen it showed and how long it took; a callback refused for safety.
type Observer interface {
	Hop(dialect, network, screen string, took time.Duration)
	Refused(reason string)
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
// gets a 400 with a one-line reason and changes nothing; a phone that is not
// a valid phone number, or one over its rate, gets a polite END and changes
// nothing; an internal failure gets a polite END screen, and the error is
// logged without anything the user typed.
func (e Edge) Handler(d Dialect) fiber.Handler {
	name := d.Name()
	base := e.Log.With().Str("dialect", name).Logger()
	return func(c *fiber.Ctx) error {
		arrived := time.Now()
		log := base
		if e.IDs != nil {
			id := e.IDs.Next()
			c.SetUserContext(reqid.With(c.UserContext(), id))
			log = base.With().Str("request_id", id).Logger()
		}
		hop, err := d.Parse(c)
		if err != nil {
			log.Warn().Err(err).Msg("malformed callback")
			return badRequest(c, err)
		}
		e164, err := e.Phones.FromNetwork(hop.Phone)
		if hop.Closing != "" {
			if err != nil {
				log.Warn().Str("session", hop.SessionID).Msg("session end for a phone that is not a phone number")
				return badRequest(c, errBadPhone)
			}
			hop.Phone = e164
			if err := e.Conv.Close(c.UserContext(), hop, ""); err != nil {
				log.Warn().Err(err).Str("session", hop.SessionID).Msg("close session")
				if errors.As(err, new(*link.HopError)) {
					return badRequest(c, err)
				}
			}
			return d.Write(c, hop, link.Reply{End: true})
		}
		if err != nil {
			log.Warn().Str("session", hop.SessionID).Msg("callback for a phone that is not a phone number")
			return d.Write(c, hop, link.Reply{Text: e.say("bad_phone", textBadPhone), End: true})
		}
		hop.Phone, hop.Dialect = e164, name
		if hop.ServiceCode == "" {
			hop.ServiceCode = e.ServiceCode
		}
		hop.Limit = e.Limits.For(d.Name(), hop.Network)
		if !e.PhoneRate.Allow(hop.Phone) {
			log.Warn().Str("session", hop.SessionID).Msg("phone over its rate limit")
			if e.Observer != nil {
				e.Observer.Refused("phone_rate")
			}
			return d.Write(c, hop, link.Reply{Text: e.say("too_fast", textTooFast), End: true})
		}
		reply, err := e.Conv.Handle(c.UserContext(), hop)
		var bad *link.HopError
		switch {
		case errors.As(err, &bad):
			log.Warn().Err(err).Str("session", hop.SessionID).Msg("refused hop")
			return badRequest(c, err)
		case err != nil:
			log.Error().Err(err).Str("session", hop.SessionID).Msg("hop failed")
			reply = link.Reply{Text: e.say("trouble", textTrouble), End: true, Outcome: "failed"}
		}
		werr := d.Write(c, hop, reply)
		took := time.Since(arrived)
		log.Info().Str("session", hop.SessionID).Str("network", hop.Network).Str("from", reply.From).
			Str("screen", reply.Screen).Str("outcome", reply.Outcome).Bool("end", reply.End).
			Dur("took", took).Msg("hop")
		if e.Observer != nil {
			e.Observer.Hop(name, hop.Network, reply.Screen, took)
		}
		return werr
	}
}

// errBadPhone is the reason given for a phone that is not a phone number.
var errBadPhone = &BadRequest{Reason: "phone number is not a valid phone number"}

// badRequest answers 400 with a one-line reason an aggregator's logs can
// show: a BadRequest's or a HopError's, which name fields, never values.
func badRequest(c *fiber.Ctx, err error) error {
	reason := "unreadable callback"
	var br *BadRequest
	var he *link.HopError
	switch {
	case errors.As(err, &br):
		reason = br.Reason
	case errors.As(err, &he):
		reason = he.Reason
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	return c.Status(fiber.StatusBadRequest).SendString("bad request: " + reason)
}

// maxDialled bounds a dialled string: no short code with a deep-dial suffix
// is longer.
const maxDialled = 64

// checkDialled refuses a dialled string no handset can send: oversized, not
// UTF-8 (or holding U+FFFD, which a JSON decoder puts where bytes were not
// UTF-8), or carrying control characters. It is checked whole, before any
// trimming.
func checkDialled(s string) error {
	switch {
	case len(s) > maxDialled:
		return &BadRequest{Reason: "dialled string is oversized"}
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return &BadRequest{Reason: "dialled string is not UTF-8"}
	case strings.ContainsFunc(s, unicode.IsControl):
		return &BadRequest{Reason: "dialled string carries control characters"}
	}
	return nil
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
