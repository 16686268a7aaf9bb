package sms

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/store"
)

// Engine is the conversation behind the screens; *menus.Engine is one.
type Engine interface {
	Handle(ctx context.Context, hop menus.Hop) (menus.Reply, error)
}

// ConversationStore keeps what a text conversation needs; *store.DB is one.
type ConversationStore interface {
	OptOut(ctx context.Context, phone string, out bool, at time.Time) error
	Conversation(ctx context.Context, phone string) (store.Conversation, bool, error)
	SetConversation(ctx context.Context, phone string, c store.Conversation) error
	LinksByPhone(ctx context.Context, phone string) ([]menus.Link, error)
}

var _ ConversationStore = (*store.DB)(nil)

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
	SessionTTL time.Duration // inactivity before the conversation lapses; default 10m
	Now        func() time.Time
	Log        zerolog.Logger
}

// Texts every reply of the conversation itself uses (the screens come from
// the engine).
const (
	replyStopped   = "You will get no more messages from us. Text START to get them again."
	replyStarted   = "Welcome back. You will get our messages again. Text %s to link a bank account."
	replyCancelled = "Cancelled. Nothing was linked. Text %s to start again."
	replyHelp      = "Text %s to link your bank account, STATUS to see linked accounts, STOP to get no more messages."
	replyNoLinks   = "No bank account is linked to this phone. Text %s to link one."
	replyTrouble   = "Sorry, something went wrong. Nothing was linked. Please try again later."
)

// Receive answers one message from a phone with the text to send back.
func (c *Conversation) Receive(ctx context.Context, phone, body string) (string, error) {
	now := c.Now()
	word := strings.ToUpper(strings.TrimSpace(body))
	keyword := strings.ToUpper(orDefault(c.Keyword, "LINK"))
	switch word {
	case wordStop:
		if err := c.Store.OptOut(ctx, phone, true, now); err != nil {
			return "", err
		}
		return replyStopped, c.end(ctx, phone)
	case wordStart:
		if err := c.Store.OptOut(ctx, phone, false, now); err != nil {
			return "", err
		}
		return fmt.Sprintf(replyStarted, keyword), nil
	case wordCancel:
		return fmt.Sprintf(replyCancelled, keyword), c.end(ctx, phone)
	case wordStatus:
		return c.status(ctx, phone, keyword)
	case keyword:
		conv := store.Conversation{Session: fmt.Sprintf("sms-%s-%d", menus.PhoneKey(phone), now.UnixNano())}
		return c.hop(ctx, phone, conv, menus.Hop{New: true}, now)
	}
	conv, ok, err := c.Store.Conversation(ctx, phone)
	if err != nil {
		return "", err
	}
	if !ok || !now.Before(conv.Expires) {
		return fmt.Sprintf(replyHelp, keyword), nil
	}
	return c.hop(ctx, phone, conv, menus.Hop{Input: strings.TrimSpace(body)}, now)
}

// hop takes one message through the engine as a latest-input hop numbered
// by the conversation (inbound duplicates never reach it: they are dropped
// on the provider's message id).
func (c *Conversation) hop(ctx context.Context, phone string, conv store.Conversation, hop menus.Hop, now time.Time) (string, error) {
	conv.Seq++
	hop.SessionID, hop.Phone, hop.Seq = conv.Session, phone, conv.Seq
	hop.Channel, hop.TTL = menus.ChannelSMS, c.ttl()
	reply, err := c.Engine.Handle(ctx, hop)
	if err != nil {
		c.Log.Warn().Err(err).Str("session", conv.Session).Msg("text hop failed")
		return replyTrouble, c.end(ctx, phone)
	}
	if reply.End {
		return reply.Text, c.end(ctx, phone)
	}
	conv.Expires = now.Add(c.ttl())
	return reply.Text, c.Store.SetConversation(ctx, phone, conv)
}

// end forgets the phone's conversation.
func (c *Conversation) end(ctx context.Context, phone string) error {
	return c.Store.SetConversation(ctx, phone, store.Conversation{})
}

// status lists the phone's linked accounts in one message.
func (c *Conversation) status(ctx context.Context, phone, keyword string) (string, error) {
	links, err := c.Store.LinksByPhone(ctx, phone)
	if err != nil {
		return "", err
	}
	if len(links) == 0 {
		return fmt.Sprintf(replyNoLinks, keyword), nil
	}
	parts := make([]string, 0, len(links))
	for _, l := range links {
		s := l.Bank + " " + l.Masked
		if l.ReauthRequired {
			s += " (log in again)"
		}
		parts = append(parts, s)
	}
	return fit(menus.Transliterate("Linked: " + strings.Join(parts, ", ") + ".")), nil
}

// ttl is the conversation's inactivity limit.
func (c *Conversation) ttl() time.Duration {
	if c.SessionTTL > 0 {
		return c.SessionTTL
	}
	return 10 * time.Minute
}
