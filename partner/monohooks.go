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

// Mono's events, by their name without the "mono.events." prefix.
const (
	monoAccountConnected    = "account_connected"
	monoAccountUpdated      = "account_updated"
	monoAccountReauthorized = "account_reauthorized"
	monoReauthRequired      = "reauthorisation_required"
	monoAccountUnlinked     = "account_unlinked"
	monoSyncFailed          = "sync_failed"
)

// monoEventNames maps other spellings an event's name may take (British
// and American, as Mono's own names mix them) to the one the gateway knows
// it by.
var monoEventNames = map[string]string{
	"account_reauthorised":     monoAccountReauthorized,
	"reauthorization_required": monoReauthRequired,
}

// Values of an account_updated's meta.sync_status that change something.
const (
	syncFailed         = "FAILED"
	syncReauthRequired = "REAUTHORISATION_REQUIRED"
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

// monoEvent is one of Mono's webhooks as the gateway reads it, from either
// of its shapes: the older {event, data} and the newer one adding event_id,
// timestamp, and app and business inside data.
type monoEvent struct {
	Name       string    // as Mono sent it: "mono.events.account_updated"
	Kind       string    // what it is: monoAccountUpdated, …; "" for an event the gateway does not know
	ID         string    // event_id; empty for older events
	Sent       time.Time // the envelope's timestamp; zero without one
	At         time.Time // Mono's own time for it: Sent, else the account's updated_at; zero without either
	Account    string    // the account it is about, wherever Mono put its id; "" when it names none
	DataStatus string    // meta.data_status, upper case
	SyncStatus string    // meta.sync_status, upper case
}

// jsonObject is a JSON object whose members are read only when used, so a
// member of an unexpected type spoils nothing but itself.
type jsonObject map[string]json.RawMessage

// object is the member named key when it is an object, else nil.
func (o jsonObject) object(key string) jsonObject {
	var v jsonObject
	if json.Unmarshal(o[key], &v) != nil {
		return nil
	}
	return v
}

// str is the first of the members named keys that is a non-empty string,
// trimmed; "" when there is none.
func (o jsonObject) str(keys ...string) string {
	for _, k := range keys {
		var v string
		if json.Unmarshal(o[k], &v) == nil {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// parseMonoEvent reads a webhook's body; ok is false when it is not a JSON
// object with an event name. Each field the gateway uses is read under the
// names Mono's pages give it (snake_case and camelCase), and is missing
// rather than an error when it has another type: data that is not an
// object names no account.
func parseMonoEvent(body []byte) (ev monoEvent, ok bool) {
	var env jsonObject
	if json.Unmarshal(body, &env) != nil || env == nil {
		return ev, false
	}
	if ev.Name = env.str("event"); ev.Name == "" {
		return ev, false
	}
	kind := strings.TrimPrefix(strings.ToLower(ev.Name), "mono.events.")
	if k, ok := monoEventNames[kind]; ok {
		kind = k
	}
	switch kind {
	case monoAccountConnected, monoAccountUpdated, monoAccountReauthorized, monoReauthRequired, monoAccountUnlinked, monoSyncFailed:
		ev.Kind = kind
	}
	ev.ID = env.str("event_id", "eventId")
	data := env.object("data")
	account, meta := data.object("account"), data.object("meta")
	ev.Account = account.str("_id", "id")
	if ev.Account == "" {
		ev.Account = data.str("account", "_id", "id") // account as a bare id (the jobs events), or the id of data itself
	}
	ev.DataStatus = strings.ToUpper(meta.str("data_status", "dataStatus"))
	ev.SyncStatus = strings.ToUpper(meta.str("sync_status", "syncStatus"))
	ev.Sent = parseMonoTime(env.str("timestamp"))
	if ev.At = ev.Sent; ev.At.IsZero() {
		ev.At = parseMonoTime(account.str("updated_at", "updatedAt"))
	}
	return ev, true
}

// parseMonoTime reads one of Mono's times; zero when it is not one.
func parseMonoTime(v string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// Handler answers Mono: 401 without the right secret, 400 for a body that
// is not an event, 200 once the event is applied (or was already, or names
// no account, so there is nothing to apply).
func (h *MonoWebhooks) Handler() fiber.Handler {
	want := sha256.Sum256([]byte(h.Secret))
	return func(c *fiber.Ctx) error {
		got := sha256.Sum256([]byte(c.Get("mono-webhook-secret")))
		if h.Secret == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			h.Log.Warn().Msg("mono webhook without the right secret")
			return fail(c, fiber.StatusUnauthorized, "unauthorized", "mono-webhook-secret does not match")
		}
		ev, ok := parseMonoEvent(c.Body())
		if !ok {
			return fail(c, fiber.StatusBadRequest, "invalid_event", "body is not a Mono event")
		}
		id := ev.ID
		if id == "" { // an older event without an id: the same body is the same event
			sum := sha256.Sum256(c.Body())
			id = "body:" + hex.EncodeToString(sum[:16])
		}
		if ev.Account == "" {
			h.Log.Info().Str("event", ev.Name).Str("event_id", id).Msg("mono webhook naming no account: nothing to apply")
			return c.JSON(fiber.Map{"received": true})
		}
		now := h.Now()
		var emitted int
		var nudged bool
		applied, err := h.Store.MonoEvent(c.UserContext(), id, now, ev.Account, func(linked *link.Link, reauth *link.Invite) link.MonoOutcome {
			out, required := h.apply(ev, linked, reauth, now)
			emitted, nudged = len(out.Events), false
			if required && h.Nudge && linked != nil && linked.Unlinked.IsZero() {
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
		h.Log.Info().Str("event", ev.Name).Str("event_id", id).Bool("applied", applied).Msg("mono webhook")
		if emitted > 0 && applied && h.Notify != nil {
			h.Notify()
		}
		return c.JSON(fiber.Map{"received": true})
	}
}

// apply changes the link and reauth invitation an event is about and
// returns the partner events it causes, and whether Mono asked for a
// reauthorisation (the customer is nudged then).
//
// An account_updated is remembered for the account whether or not a link
// exists yet: a link that commits later takes its status and tells the
// partner then, naming its own phone and reference. Until then, with
// neither a link nor an invitation to name, there is no one to tell. Its
// sync_status REAUTHORISATION_REQUIRED is applied as a
// reauthorisation_required is, and FAILED as a sync_failed.
//
// An account_connected changes nothing: its data status (PROCESSING when
// the link is new) may arrive after the account_updated that followed it,
// and the link does not keep when its status was set to tell which is
// newer; that account_updated carries the status anyway.
func (h *MonoWebhooks) apply(ev monoEvent, linked *link.Link, reauth *link.Invite, now time.Time) (out link.MonoOutcome, required bool) {
	account := ev.Account
	emit := func(typ string, extra map[string]any) {
		// Each a microsecond after the one before: the partner hears them
		// in this order.
		at := now.Add(time.Duration(len(out.Events)) * time.Microsecond)
		if e, ok := accountEvent(h.Emits, typ, account, linked, reauth, at, extra); ok {
			out.Events = append(out.Events, e)
		}
	}
	reauthLink := func() *link.Link { // the link the reauthorisation carries, when it is the account's
		if reauth != nil && reauth.Link != nil && reauth.Link.AccountID == account {
			return reauth.Link
		}
		return nil
	}
	reauthRequired := func() {
		if linked != nil {
			linked.ReauthRequired = true
		}
		emit(link.TypeReauthorisationNeeded, nil)
		required = true
	}
	switch ev.Kind {
	case monoAccountUpdated:
		status := ev.DataStatus
		if status != "" {
			out.Update = &link.MonoUpdate{AccountID: account, DataStatus: status, EventAt: ev.At, Received: now}
			if linked != nil {
				linked.DataStatus = status
			}
			if l := reauthLink(); l != nil {
				l.DataStatus = status
			}
		}
		if (linked != nil || reauth != nil) && (status != "" || ev.SyncStatus != "") {
			switch { // without one in the event, the status the link keeps
			case status != "":
			case linked != nil:
				status = linked.DataStatus
			case reauthLink() != nil:
				status = reauthLink().DataStatus
			}
			extra := map[string]any{"data_status": status}
			if ev.SyncStatus != "" {
				extra["sync_status"] = ev.SyncStatus
			}
			emit(link.TypeDataStatus, extra)
		}
		switch ev.SyncStatus {
		case syncReauthRequired:
			reauthRequired()
		case syncFailed:
			emit(link.TypeSyncFailed, nil)
		}
	case monoAccountReauthorized:
		pending := reauth != nil && reauth.Status == link.StatusPending
		was := linked != nil && linked.ReauthRequired
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
		if pending || was {
			emit(link.TypeAccountReauthorised, map[string]any{"source": "mono"})
		}
	case monoReauthRequired:
		reauthRequired()
	case monoSyncFailed:
		emit(link.TypeSyncFailed, nil)
	case monoAccountUnlinked:
		at := ev.Sent
		if at.IsZero() {
			at = now
		}
		if !ev.Sent.IsZero() {
			// A late retry of an unlinking is not about a link made since.
			if linked != nil && ev.Sent.Before(linked.Linked) {
				linked = nil
			}
			if l := reauthLink(); l != nil && ev.Sent.Before(l.Linked) {
				reauth = nil
			}
			if linked == nil && reauth == nil {
				break
			}
		}
		told := false // the partner heard of it already
		if linked != nil {
			told = !linked.Unlinked.IsZero()
			if !told {
				linked.Unlinked = at
			}
		}
		if l := reauthLink(); l != nil {
			told = told || (linked == nil && !l.Unlinked.IsZero())
			if l.Unlinked.IsZero() {
				l.Unlinked = at
			}
		}
		if !told && (linked != nil || reauth != nil) {
			emit(link.TypeAccountUnlinked, nil)
		}
	}
	return out, required
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
