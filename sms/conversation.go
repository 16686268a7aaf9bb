package sms

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/keyed"
	"github.com/ussdlink/ussdlink/lang"
	"github.com/ussdlink/ussdlink/link"
)

// Engine is the conversation behind the screens; *menus.Engine is one.
type Engine interface {
	Handle(ctx context.Context, hop link.Hop) (link.Reply, error)
	// Cancel ends a session as the user's exit.
	Cancel(ctx context.Context, sessionID, phone string) error
}

// ConversationStore keeps what a text conversation needs; the store implements it.
type ConversationStore interface {
	OptOut(ctx context.Context, phone string, out bool, at time.Time) error
	EnqueueTexts(ctx context.Context, texts ...link.Text) error
	Conversation(ctx context.Context, phone string) (link.Conversation, bool, error)
	SetConversation(ctx context.Context, phone string, c link.Conversation) error
	LinksByPhone(ctx context.Context, phone string) ([]link.Link, error)
	PhoneLanguage(ctx context.Context, phone string) (string, error)
}

// Words a texter may send, whatever the case.
const (
	wordStop   = "STOP"
	wordCancel = "CANCEL"
	wordStart  = "START"
	wordStatus = "STATUS"
)

// Conversation is the link flow by text message: the same screens as USSD,
// one message each, in a session keyed by the phone. Texting the keyword
// starts it; STOP or CANCEL ends it; STATUS lists the phone's links; STOP
// also stops notifications until START.
type Conversation struct {
	Engine     Engine
	Store      ConversationStore
	Keyword    string        // starts a conversation; default "LINK"
	SessionTTL time.Duration // inactivity before the conversation lapses; default DefaultSessionTTL
	Now        func() time.Time
	Log        zerolog.Logger
	// Words is the catalogue its own replies are said in (nil: the
	// embedded one), in the phone's language, or Language when it chose
	// none.
	Words    *lang.Catalogue
	Language string

	locks keyed.Mutex // one phone's texts are taken one at a time
}

// say is one of the conversation's own replies, in the phone's language.
func (c *Conversation) say(ctx context.Context, phone, key string, args ...string) string {
	words := c.Words
	if words == nil {
		words = defaultWords()
	}
	code, err := c.Store.PhoneLanguage(ctx, phone)
	if err != nil || code == "" {
		code = c.Language
	}
	return words.Text(code, key, args...)
}

// Receive takes one message from a phone and queues the text to send back:
// a screen's reply is committed by the engine with the session it comes
// from; the conversation's own replies are queued after what they record.
// queued reports whether a text was queued.
func (c *Conversation) Receive(ctx context.Context, phone, body string) (queued bool, err error) {
	reply, viaEngine, err := c.receive(ctx, phone, body, true)
	if err != nil || reply == "" || viaEngine {
		return viaEngine && err == nil, err
	}
	t := link.Text{ID: "sms_" + link.NewEventID()[4:], Kind: link.TextReply, To: phone,
		Data: map[string]string{"text": reply}, Created: c.Now()}
	return true, c.Store.EnqueueTexts(ctx, t)
}

// Reply takes one message from a phone and returns the text to answer it
// with, for providers that carry the reply in their answer; nothing is
// queued.
func (c *Conversation) Reply(ctx context.Context, phone, body string) (string, error) {
	reply, _, err := c.receive(ctx, phone, body, false)
	return reply, err
}

// receive answers one message; viaEngine reports that the engine already
// queued the reply with its commit.
func (c *Conversation) receive(ctx context.Context, phone, body string, queue bool) (reply string, viaEngine bool, err error) {
	unlock := c.locks.Lock(link.PhoneKey(phone))
	defer unlock()
	now := c.Now()
	// A handset may break a long text into lines: they are one input.
	body = strings.Join(strings.Fields(body), " ")
	word := strings.ToUpper(body)
	keyword := strings.ToUpper(orDefault(c.Keyword, "LINK"))
	switch word {
	case wordStop:
		if err := c.Store.OptOut(ctx, phone, true, now); err != nil {
			return "", false, err
		}
		return c.say(ctx, phone, "sms_stopped"), false, c.end(ctx, phone)
	case wordStart:
		if err := c.Store.OptOut(ctx, phone, false, now); err != nil {
			return "", false, err
		}
		return c.say(ctx, phone, "sms_started", "keyword", keyword), false, nil
	case wordCancel:
		return c.say(ctx, phone, "sms_cancelled", "keyword", keyword), false, c.end(ctx, phone)
	case wordStatus:
		r, err := c.status(ctx, phone, keyword)
		return r, false, err
	case keyword:
		if err := c.end(ctx, phone); err != nil { // a new LINK replaces a conversation under way
			return "", false, err
		}
		conv := link.Conversation{Session: fmt.Sprintf("sms-%s-%d", link.PhoneKey(phone), now.UnixNano())}
		r, err := c.hop(ctx, phone, conv, link.Hop{New: true, ReplyByText: queue}, now)
		return r, queue, err
	}
	conv, ok, err := c.Store.Conversation(ctx, phone)
	if err != nil {
		return "", false, err
	}
	if !ok || !now.Before(conv.Expires) {
		return c.say(ctx, phone, "sms_help", "keyword", keyword), false, nil
	}
	r, err := c.hop(ctx, phone, conv, link.Hop{Input: body, ReplyByText: queue}, now)
	return r, queue, err
}

// hop takes one message through the engine as a latest-input hop numbered
// by the conversation (inbound duplicates never reach it: they are dropped
// on the provider's message id).
func (c *Conversation) hop(ctx context.Context, phone string, conv link.Conversation, hop link.Hop, now time.Time) (string, error) {
	conv.Seq++
	hop.SessionID, hop.Phone, hop.Seq = conv.Session, phone, conv.Seq
	hop.Channel, hop.TTL = link.ChannelSMS, c.ttl()
	reply, err := c.Engine.Handle(ctx, hop)
	if err != nil {
		// Nothing was committed: the provider's retry of this message is
		// taken again.
		c.Log.Warn().Err(err).Str("session", conv.Session).Msg("text hop failed")
		return "", err
	}
	if reply.End {
		return reply.Text, c.Store.SetConversation(ctx, phone, link.Conversation{})
	}
	conv.Expires = now.Add(c.ttl())
	return reply.Text, c.Store.SetConversation(ctx, phone, conv)
}

// end ends the phone's conversation, and its session as the user's exit
// (so a later dial does not offer to continue it).
func (c *Conversation) end(ctx context.Context, phone string) error {
	conv, ok, err := c.Store.Conversation(ctx, phone)
	if err != nil {
		return err
	}
	if ok && conv.Session != "" {
		if err := c.Engine.Cancel(ctx, conv.Session, phone); err != nil {
			return err
		}
	}
	return c.Store.SetConversation(ctx, phone, link.Conversation{})
}

// status lists the phone's linked accounts in one message.
func (c *Conversation) status(ctx context.Context, phone, keyword string) (string, error) {
	links, err := c.Store.LinksByPhone(ctx, phone)
	if err != nil {
		return "", err
	}
	if len(links) == 0 {
		return c.say(ctx, phone, "sms_no_links", "keyword", keyword), nil
	}
	parts := make([]string, 0, len(links))
	for _, l := range links {
		s := l.Bank + " " + l.Masked
		if l.ReauthRequired {
			s += " (log in again)"
		}
		parts = append(parts, s)
	}
	return fit(gsm.Transliterate(c.say(ctx, phone, "sms_linked_list", "accounts", strings.Join(parts, ", ")))), nil
}

// ttl is the conversation's inactivity limit.
func (c *Conversation) ttl() time.Duration {
	if c.SessionTTL > 0 {
		return c.SessionTTL
	}
	return DefaultSessionTTL
}
