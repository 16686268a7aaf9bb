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

	"github.com/ussdlink/ussdlink/menus"
	"github.com/ussdlink/ussdlink/store"
)

// MonoEvents is where Mono's webhooks are applied; *store.DB is one.
type MonoEvents interface {
	MonoEvent(ctx context.Context, eventID string, at time.Time, accountID string,
		apply func(link *menus.Link, reauth *menus.Invite) store.MonoOutcome) (bool, error)
}

var _ MonoEvents = (*store.DB)(nil)

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
	// says one is required: ServiceCode and InviteTTL shape the code.
	Nudge       bool
	NotifyTexts func()
	ServiceCode string
	InviteTTL   time.Duration
}

// monoEnvelope is a webhook from Mono; older events carry no event_id.
type monoEnvelope struct {
	Event   string          `json:"event"`
	EventID string          `json:"event_id"`
	Data    json.RawMessage `json:"data"`
}

// monoData holds the parts of an event's data the gateway uses.
type monoData struct {
	ID      string `json:"id"`
	IDAlt   string `json:"_id"`
	Account struct {
		ID    string `json:"id"`
		IDAlt string `json:"_id"`
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
		applied, err := h.Store.MonoEvent(c.UserContext(), id, now, account, func(link *menus.Link, reauth *menus.Invite) store.MonoOutcome {
			out := store.MonoOutcome{Events: h.apply(env.Event, data, account, link, reauth, now)}
			emitted = len(out.Events)
			if env.Event == monoReauthRequired && link != nil && h.Nudge {
				out.Nudge, out.NudgeText = h.nudge(link, now)
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
// returns the partner events it causes.
func (h *MonoWebhooks) apply(event string, data monoData, account string, link *menus.Link, reauth *menus.Invite, now time.Time) []menus.Event {
	var out []menus.Event
	emit := func(typ string, extra map[string]any) {
		if h.Emits == nil || !h.Emits(typ) {
			return
		}
		d := map[string]any{"account_id": account}
		if link != nil {
			d["phone"], d["reference"] = link.Phone, link.Reference
			d["institution"] = map[string]any{"id": link.Institution, "name": link.Bank}
		}
		if reauth != nil && (link == nil || reauth.Reference != "") {
			d["phone"], d["reference"] = reauth.Phone, reauth.Reference // the partner's latest word on it
		}
		for k, v := range extra {
			d[k] = v
		}
		out = append(out, menus.Event{ID: menus.NewEventID(), Type: typ, Timestamp: now, Data: d})
	}
	switch strings.TrimSpace(event) {
	case monoAccountUpdated:
		status := strings.ToUpper(data.Meta.DataStatus)
		if link != nil {
			link.DataStatus = status
		}
		emit(menus.TypeDataStatus, map[string]any{"data_status": status})
	case monoAccountReauthorized:
		pending := reauth != nil && reauth.Status == menus.StatusPending
		required := link != nil && link.ReauthRequired
		if link != nil {
			link.ReauthRequired, link.Reauthorised = false, now
		}
		if pending {
			reauth.Status, reauth.Updated = menus.StatusReauthorised, now
			if link != nil {
				l := *link
				reauth.Link = &l
			}
		}
		if pending || required {
			emit(menus.TypeAccountReauthorised, map[string]any{"source": "mono"})
		}
	case monoReauthRequired:
		if link != nil {
			link.ReauthRequired = true
		}
		emit(menus.TypeReauthorisationNeeded, nil)
	}
	return out
}

// nudge is the reauthorisation invitation a link's customer is texted,
// and the text, once the invitation has its code.
func (h *MonoWebhooks) nudge(l *menus.Link, now time.Time) (*menus.Invite, func(*menus.Invite) menus.Text) {
	ttl := h.InviteTTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	inv := &menus.Invite{ID: "rea_" + randomID(), Kind: menus.InviteReauth, Phone: l.Phone, Reference: l.Reference,
		AccountID: l.AccountID, Institution: l.Institution, AuthMethod: l.AuthMethod, Status: menus.StatusPending,
		Created: now, Updated: now, Expires: now.Add(ttl)}
	bank := l.Bank
	return inv, func(inv *menus.Invite) menus.Text {
		return menus.Text{ID: "sms_" + menus.NewEventID()[4:], Kind: menus.TextReauthNudge, To: inv.Phone, Created: now,
			Data: map[string]string{"bank": bank, "dial": Dial(h.ServiceCode, inv.Code)}}
	}
}
