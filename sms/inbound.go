package sms

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/phone"
)

// InboundStore records inbound deliveries and queues replies; the store
// implements it.
type InboundStore interface {
	FirstDelivery(ctx context.Context, provider, id string, at time.Time) (bool, error)
	ForgetDelivery(ctx context.Context, provider, id string) error
	EnqueueTexts(ctx context.Context, texts ...link.Text) error
}

// Inbound serves the providers' inbound-message webhooks: Africa's Talking
// (/sms/africastalking, protected like the USSD callbacks), Twilio
// (/sms/twilio, X-Twilio-Signature verified, answered with TwiML) and
// Termii (/sms/termii, X-Termii-Signature verified). A message delivered
// again (providers retry until they get a 200) is answered and dropped. The
// sender is read into E.164 before anything else; a sender that is not a
// valid phone number gets a 400 and nothing is recorded for it.
type Inbound struct {
	Conv   *Conversation
	Store  InboundStore
	Phones phone.Numbers // reads senders' numbers; the zero value takes only international ones
	// TwilioToken verifies Twilio's signatures; TwilioURL is the public URL
	// Twilio calls, which it signs (by default the URL as received).
	TwilioToken, TwilioURL string
	TermiiSecret           string // verifies Termii's signatures
	Notify                 func() // wakes the text sender
	Now                    func() time.Time
	Log                    zerolog.Logger
}

// Mount registers the routes; auth guards the Africa's Talking route, which
// carries no signature of its own.
func (in *Inbound) Mount(r fiber.Router, auth fiber.Handler) {
	r.Post("/sms/africastalking", auth, in.africasTalking)
	r.Post("/sms/twilio", in.twilio)
	r.Post("/sms/termii", in.termii)
}

// africasTalking takes form fields from, to, text, date, id, linkId.
func (in *Inbound) africasTalking(c *fiber.Ctx) error {
	from, id := strings.TrimSpace(c.FormValue("from")), strings.TrimSpace(c.FormValue("id"))
	if from == "" || id == "" {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: missing from or id")
	}
	from, err := in.sender(from)
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: " + err.Error())
	}
	id = strings.Clone(id)
	err = in.receive(c.UserContext(), "africastalking", id, from, strings.Clone(c.FormValue("text")))
	if err != nil {
		return err
	}
	return c.SendString("OK")
}

// twilio takes Twilio's form post and answers in TwiML.
func (in *Inbound) twilio(c *fiber.Ctx) error {
	params, err := url.ParseQuery(string(c.Body()))
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: body is not a form")
	}
	full := in.TwilioURL
	if full == "" {
		full = c.BaseURL() + c.OriginalURL()
	}
	if in.TwilioToken == "" || !VerifyTwilio(in.TwilioToken, full, params, c.Get("X-Twilio-Signature")) {
		in.Log.Warn().Msg("twilio message without a valid signature")
		return c.Status(fiber.StatusForbidden).SendString("forbidden")
	}
	from, sid := params.Get("From"), params.Get("MessageSid")
	if from == "" || sid == "" {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: missing From or MessageSid")
	}
	if from, err = in.sender(from); err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: " + err.Error())
	}
	var reply string
	err = in.receiveInline(c.UserContext(), "twilio", sid, from, params.Get("Body"), &reply)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/xml; charset=utf-8")
	if reply == "" {
		return c.SendString(`<?xml version="1.0" encoding="UTF-8"?><Response/>`)
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response><Message>`)
	xml.EscapeText(&b, []byte(reply))
	b.WriteString(`</Message></Response>`)
	return c.SendString(b.String())
}

// termiiInbound is Termii's inbound webhook body.
type termiiInbound struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	MessageID string `json:"message_id"`
	Sender    string `json:"sender"`
	Receiver  string `json:"receiver"`
	Message   string `json:"message"`
}

// termii takes Termii's signed JSON.
func (in *Inbound) termii(c *fiber.Ctx) error {
	body := c.Body()
	if in.TermiiSecret == "" || !VerifyTermii(in.TermiiSecret, body, c.Get("X-Termii-Signature")) {
		in.Log.Warn().Msg("termii message without a valid signature")
		return c.Status(fiber.StatusUnauthorized).SendString("unauthorized")
	}
	var m termiiInbound
	if err := json.Unmarshal(body, &m); err != nil || m.Sender == "" {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: body is not the expected JSON object with a sender")
	}
	id := m.MessageID
	if id == "" {
		id = m.ID
	}
	if id == "" {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: missing message_id")
	}
	sender, err := in.sender(m.Sender)
	if err != nil {
		return c.Status(fiber.StatusBadRequest).SendString("bad request: " + err.Error())
	}
	if err := in.receive(c.UserContext(), "termii", id, sender, m.Message); err != nil {
		return err
	}
	return c.SendString("OK")
}

// errBadSender is the reason given for a sender that is not a phone number;
// the number itself is never echoed.
var errBadSender = errors.New("sender is not a valid phone number")

// sender reads a sender's number into E.164 (a fresh string, safe to keep
// past the request).
func (in *Inbound) sender(raw string) (string, error) {
	e164, err := in.Phones.FromNetwork(raw)
	if err != nil {
		in.Log.Warn().Msg("inbound text from a sender that is not a phone number")
		return "", errBadSender
	}
	return e164, nil
}

// receive hands a first delivery to the conversation, whose reply is
// queued as a text. A repeated delivery is dropped; one whose processing
// failed is forgotten, so the provider's retry is taken again.
func (in *Inbound) receive(ctx context.Context, provider, id, from, text string) error {
	return in.process(ctx, provider, id, func() error {
		queued, err := in.Conv.Receive(ctx, from, text)
		if err != nil {
			return err
		}
		if queued && in.Notify != nil {
			in.Notify()
		}
		return nil
	})
}

// receiveInline is receive for providers that take the reply in their
// answer (Twilio's TwiML): reply is set, nothing is queued.
func (in *Inbound) receiveInline(ctx context.Context, provider, id, from, text string, reply *string) error {
	return in.process(ctx, provider, id, func() error {
		r, err := in.Conv.Reply(ctx, from, text)
		*reply = r
		return err
	})
}

// process runs fn for the first delivery of a message id.
func (in *Inbound) process(ctx context.Context, provider, id string, fn func() error) error {
	first, err := in.Store.FirstDelivery(ctx, provider, id, in.Now())
	if err != nil {
		return err
	}
	if !first {
		in.Log.Info().Str("provider", provider).Str("message_id", id).Msg("repeated inbound message dropped")
		return nil
	}
	if err := fn(); err != nil {
		if ferr := in.Store.ForgetDelivery(ctx, provider, id); ferr != nil {
			in.Log.Error().Err(ferr).Msg("forget failed inbound message")
		}
		return err
	}
	return nil
}
