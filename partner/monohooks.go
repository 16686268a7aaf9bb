package partner

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/link"
)

// MonoEvents is where Mono's webhooks are applied; the store implements it.
type MonoEvents interface {
	MonoEvent(ctx context.Context, eventID string, at time.Time, accountID string,
		apply func(linked *link.Link, reauth *link.Invite) link.MonoOutcome) (bool, error)
}

// Mono's event names.
const (
	monoAccountUpdated      = "mono.events.account_updated"
	monoAccountReauthorized = "mono.events.account_reauthorized"
	monoReauthRequired      = "mono.events.reauthorisation_required"
)

// MonoWebhooks receives Mono's webhooks at POST /webhooks/mono: it checks
// the shared secret, applies each event once (Mono retries for up to 48
// hours with the same event_id), and tells the partner what changed.
type MonoWebhooks struct {
	Secret string // [mono] webhook-secret: the mono-webhook-secret header must equal it
	Store  MonoEvents
	Emits  func(eventType string) bool // which partner events to emit
	Notify func()                      // wakes the partner deliverer
	Now    func() time.Time
	Log    zerolog.Logger
	// Nudge, when set, texts the customer a reauthorisation code when Mono
	// says one is required: ServiceCode, InviteTTL and CodeDigits shape
	// the code.
	Nudge       bool
	NotifyTexts func()
	ServiceCode string
	InviteTTL   time.Duration
	CodeDigits  int // digits of a new reauthorisation code; default DefaultCodeDigits
}

// codeDigits is how many digits a new nudge's code has.
func (h *MonoWebhooks) codeDigits() int {
	if h.CodeDigits > 0 {
		return h.CodeDigits
	}
	return DefaultCodeDigits
}

// monoEnvelope is a webhook from Mono; older events carry no event_id.
type monoEnvelope struct {
	Event     string          `json:"event"`
	EventID   string          `json:"event_id"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// monoData holds the parts of an event's data the gateway uses.
type monoData struct {
	ID      string `json:"id"`
	IDAlt   string `json:"_id"`
	Account struct {
		ID        string `json:"id"`
		IDAlt     string `json:"_id"`
		UpdatedAt string `json:"updated_at"`
	} `json:"account"`
	Meta struct {
		DataStatus string `json:"data_status"`
		AuthMethod string `json:"auth_method"`
	} `json:"meta"`
}

// accountID is the account an event is about, wherever Mono put its id.
func (d monoData) accountID() string {
	for _, id := range []string{d.Account.ID, d.Account.IDAlt, d.ID, d.IDAlt} {
		if id != "" {
			return id
		}
	}
	return ""
}

// Handler answers Mono: 401 without the right secret, 400 for a body that
// is not an event, 200 once the event is applied (or was already).
func (h *MonoWebhooks) Handler() fiber.Handler {
	want := sha256.Sum256([]byte(h.Secret))
	return func(c *fiber.Ctx) error {
		got := sha256.Sum256([]byte(c.Get("mono-webhook-secret")))
		if h.Secret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			h.Log.Warn().Msg("mono webhook without the right secret")
			return fail(c, fiber.StatusUnauthorized, "unauthorized", "mono-webhook-secret does not match")
		}
		var env monoEnvelope
		var data monoData
		if json.Unmarshal(c.Body(), &env) != nil || env.Event == "" || json.Unmarshal(env.Data, &data) != nil {
			return fail(c, fiber.StatusBadRequest, "invalid_event", "body is not a Mono event")
		}
		id := env.EventID
		if id == "" { // an older event without an id: the same body is the same event
			sum := sha256.Sum256(c.Body())
			id = "body:" + hex.EncodeToString(sum[:16])
		}
		account := data.accountID()
		now := h.Now()
		var emitted int
		var nudged bool
		at := env.eventTime(data)
		applied, err := h.Store.MonoEvent(c.UserContext(), id, now, account, func(linked *link.Link, reauth *link.Invite) link.MonoOutcome {
			out := h.apply(env.Event, data, account, linked, reauth, now, at)
			emitted = len(out.Events)
			if env.Event == monoReauthRequired && linked != nil && h.Nudge {
				out.Nudge, out.NudgeText = h.nudge(linked, reauth, now)
				out.CodeDigits = h.codeDigits()
				nudged = true
			}
			return out
		})
		if err != nil {
			return err
		}
		if applied && nudged && h.NotifyTexts != nil {
			h.NotifyTexts()
		}
		h.Log.Info().Str("event", env.Event).Str("event_id", id).Bool("applied", applied).Msg("mono webhook")
		if emitted > 0 && applied && h.Notify != nil {
			h.Notify()
		}
		return c.JSON(fiber.Map{"received": true})
	}
}

// apply changes the link and reauth invitation an event is about and
// returns the partner events it causes. An account_updated is remembered
// for the account whether or not a link exists yet: a link that commits
// later takes its status and tells the partner then, naming its own phone
// and reference. Until then, with neither a link nor an invitation to name,
// there is no one to tell.
func (h *MonoWebhooks) apply(event string, data monoData, account string, linked *link.Link, reauth *link.Invite, now, at time.Time) link.MonoOutcome {
	var out link.MonoOutcome
	emit := func(typ string, extra map[string]any) {
		if ev, ok := accountEvent(h.Emits, typ, account, linked, reauth, now, extra); ok {
			out.Events = append(out.Events, ev)
		}
	}
	switch strings.TrimSpace(event) {
	case monoAccountUpdated:
		status := strings.ToUpper(strings.TrimSpace(data.Meta.DataStatus))
		if status != "" && account != "" {
			out.Update = &link.MonoUpdate{AccountID: account, DataStatus: status, EventAt: at, Received: now}
		}
		if linked != nil {
			linked.DataStatus = status
		}
		if reauth != nil && reauth.Link != nil && reauth.Link.AccountID == account {
			reauth.Link.DataStatus = status
		}
		if linked != nil || reauth != nil {
			emit(link.TypeDataStatus, map[string]any{"data_status": status})
		}
	case monoAccountReauthorized:
		pending := reauth != nil && reauth.Status == link.StatusPending
		required := linked != nil && linked.ReauthRequired
		if linked != nil {
			linked.ReauthRequired, linked.Reauthorised = false, now
		}
		if pending {
			reauth.Status, reauth.Updated = link.StatusReauthorised, now
			if linked != nil {
				l := *linked
				reauth.Link = &l
			}
		}
		if pending || required {
			emit(link.TypeAccountReauthorised, map[string]any{"source": "mono"})
		}
	case monoReauthRequired:
		if linked != nil {
			linked.ReauthRequired = true
		}
		emit(link.TypeReauthorisationNeeded, nil)
	}
	return out
}

// accountEvent is a partner event about an account, naming the phone,
// reference and institution of its link and, when the partner has since
// invited the customer to re-authorise it, the invitation's phone and
// reference. ok is false when the event type is not emitted.
func accountEvent(emits func(string) bool, typ, account string, linked *link.Link, reauth *link.Invite, now time.Time, extra map[string]any) (link.Event, bool) {
	if emits == nil || !emits(typ) {
		return link.Event{}, false
	}
	d := map[string]any{"account_id": account}
	if linked != nil {
		d["phone"], d["reference"] = linked.Phone, linked.Reference
		d["institution"] = map[string]any{"id": linked.Institution, "name": linked.Bank}
	}
	if reauth != nil && (linked == nil || reauth.Reference != "") {
		d["phone"], d["reference"] = reauth.Phone, reauth.Reference // the partner's latest word on it
	}
	for k, v := range extra {
		d[k] = v
	}
	return link.Event{ID: link.NewEventID(), Type: typ, Timestamp: now, Data: d}, true
}

// LinkUpdateWindow is how recent a remembered update must be to be applied
// to a new link as it is written: received at most this long before the
// link's Linked time. The account Mono tells of is created by the flow's
// last Mono step, and a flow's steps all run within one Mono session (about
// ten minutes): an update received up to this long before the link commits
// is about the account as it is now, whichever link it arrived under; an
// older one is left to the old link, and Mono sends another after the new
// link's first data fetch anyway.
const LinkUpdateWindow = 15 * time.Minute

// LinkUpdates decides whether a new link takes the account_updated Mono
// sent before it committed: it does when the update was received at most
// LinkUpdateWindow before the link was made (or since), and it is then
// announced as DATA_STATUS naming the new link's phone and reference, as
// the webhook would have had the link existed (none when DATA_STATUS is not
// emitted). The store calls it inside the link's commit
// (store.WithLinkUpdates).
func LinkUpdates(emits func(string) bool) func(*link.Link, link.MonoUpdate) (bool, []link.Event) {
	return func(l *link.Link, u link.MonoUpdate) (bool, []link.Event) {
		if u.DataStatus == "" || u.Received.Before(l.Linked.Add(-LinkUpdateWindow)) {
			return false, nil
		}
		ev, ok := accountEvent(emits, link.TypeDataStatus, l.AccountID, l, nil, l.Linked, map[string]any{"data_status": u.DataStatus})
		if !ok {
			return true, nil
		}
		return true, []link.Event{ev}
	}
}

// eventTime is Mono's own time for an event: the envelope's timestamp, or
// the account's updated_at; zero when it sent neither (older events).
func (e monoEnvelope) eventTime(d monoData) time.Time {
	for _, v := range []string{e.Timestamp, d.Account.UpdatedAt} {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v)); err == nil {
			return t
		}
	}
	return time.Time{}
}

// nudge is the reauthorisation invitation a link's customer is texted,
// and the text, once the invitation has its code: the account's latest
// reauthorisation invitation while it still stands (the partner's, or an
// earlier nudge), otherwise a new one.
func (h *MonoWebhooks) nudge(l *link.Link, reauth *link.Invite, now time.Time) (*link.Invite, func(*link.Invite) link.Text) {
	ttl := h.InviteTTL
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	inv := reauth
	if reauth == nil || reauth.StatusAt(now) != link.StatusPending {
		inv = &link.Invite{ID: "rea_" + randomID(), Kind: link.InviteReauth, Phone: l.Phone, Reference: l.Reference,
			AccountID: l.AccountID, Institution: l.Institution, AuthMethod: l.AuthMethod, Status: link.StatusPending,
			Created: now, Updated: now, Expires: now.Add(ttl)}
	}
	bank := l.Bank
	return inv, func(inv *link.Invite) link.Text {
		return link.Text{ID: "sms_" + link.NewEventID()[4:], Kind: link.TextReauthNudge, To: inv.Phone, Created: now,
			Data: map[string]string{"bank": bank, "dial": Dial(h.ServiceCode, inv.Code)}}
	}
}
