package partner

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/ussdlink/ussdlink/funnel"
	"github.com/ussdlink/ussdlink/keyed"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/phone"
)

// Store is what the partner API keeps and reads; the store implements it.
type Store interface {
	CreateInviteAnswered(ctx context.Context, inv *link.Invite, digits int, now time.Time,
		texts func(*link.Invite) []link.Text, key string, answer func(*link.Invite) (link.Answer, error)) error
	Invite(ctx context.Context, id string) (*link.Invite, error)
	InvitesByPhone(ctx context.Context, phone string) ([]link.Invite, error)
	InvitesByReference(ctx context.Context, ref string) ([]link.Invite, error)
	Link(ctx context.Context, accountID string) (*link.Link, bool, error)
	Idempotent(ctx context.Context, key string) (*link.Answer, bool, error)
	SaveAnswer(ctx context.Context, key string, a link.Answer) error
}

// Institutions says which institutions Mono offers and, for each, the auth
// methods a customer can use: an invitation naming anything else is
// refused rather than silently opened at the bank list. The conversation
// engine's cached catalogue is one.
type Institutions interface {
	// Institution returns the institution of an id, or false when Mono
	// does not list it; an error means the list could not be read.
	Institution(ctx context.Context, id string) (mono.Institution, bool, error)
}

// API is the partner's REST API under /v1: invite a customer to link an
// account or to re-authorise one, and read what came of it.
type API struct {
	Store       Store
	Keys        []string      // accepted bearer keys; none: every call is refused
	ServiceCode string        // "*384*123#": invitation codes are dialled after it
	InviteTTL   time.Duration // how long an invitation can be used; default DefaultInviteTTL
	CodeDigits  int           // digits of an invitation code; default DefaultCodeDigits
	Now         func() time.Time
	Log         zerolog.Logger
	// Institutions checks the institution and auth method of a new link
	// invitation; nil: they are not checked.
	Institutions Institutions
	// IdempotencyTTL is how long an answer is replayed for a repeated
	// Idempotency-Key; default DefaultIdempotencyTTL. The store forgets
	// older answers.
	IdempotencyTTL time.Duration
	// Location is the time zone of the times invitation texts show; nil: UTC.
	Location *time.Location
	// Texts, when set, says whether invitations may be texted; Notify
	// wakes the text sender after one is queued.
	Texts  func(kind string) bool
	Notify func()
	// Phones reads customers' numbers into E.164, the one form invitations
	// are kept and found in; its zero value takes only international ones.
	Phones phone.Numbers

	// Locker, when set, also takes an idempotency key's lock across the
	// instances sharing the store, so that a key sent to two of them at
	// once is answered once; nil: this process is the only one.
	Locker interface {
		LockContext(ctx context.Context, key string) (unlock func(), err error)
	}

	// Funnel, when set, serves GET /v1/funnel from the store's daily
	// counters, its screens in FunnelOrder (the journey's).
	Funnel      FunnelCounter
	FunnelOrder []string
	// Languages are those an invitation may name ([ussd] languages).
	Languages []string

	locks keyed.Mutex // requests with one idempotency key are taken one at a time
}

// languageProblem refuses a language the gateway does not offer.
func (a *API) languageProblem(code string) *problem {
	if code == "" || slices.Contains(a.Languages, code) {
		return nil
	}
	return &problem{status: fiber.StatusBadRequest, code: "invalid_language",
		message: "language must be one of " + strings.Join(a.Languages, ", ")}
}

// FunnelCounter reads the drop-off funnel's daily counters; the store
// implements it.
type FunnelCounter interface {
	FunnelCounts(ctx context.Context, since time.Time, by string) ([]link.FunnelCount, error)
}

// DefaultCodeDigits is how many digits an invitation code has unless
// configured: four are quick to type on a keypad, and an invitation is
// usable only by its own phone, so a guessed code links nothing.
const DefaultCodeDigits = 4

// Defaults of the partner API's lifetimes: an invitation can be used for a
// day, and a repeated Idempotency-Key is answered the same for a day.
const (
	DefaultInviteTTL      = 24 * time.Hour
	DefaultIdempotencyTTL = 24 * time.Hour
)

// Mount registers the routes on r, the /v1 group.
func (a *API) Mount(r fiber.Router) {
	if a.InviteTTL <= 0 {
		a.InviteTTL = DefaultInviteTTL
	}
	if a.CodeDigits <= 0 {
		a.CodeDigits = DefaultCodeDigits
	}
	if a.IdempotencyTTL <= 0 {
		a.IdempotencyTTL = DefaultIdempotencyTTL
	}
	r.Use(a.authenticate)
	r.Post("/links", a.idempotent(a.createLink))
	r.Get("/links", a.listLinks)
	r.Get("/links/:id", a.getInvite(link.InviteLink))
	r.Post("/reauth", a.idempotent(a.createReauth))
	r.Get("/reauth/:id", a.getInvite(link.InviteReauth))
	if a.Funnel != nil {
		r.Get("/funnel", a.funnel)
	}
}

// funnel answers GET /v1/funnel?since=7d&by=network|dialect|institution:
// the drop-off funnel as `ussdlink funnel -format json` prints it.
func (a *API) funnel(c *fiber.Ctx) error {
	since, err := funnel.ParseSince(c.Query("since", "7d"), a.Now())
	if err != nil {
		return fail(c, fiber.StatusBadRequest, "invalid_since", err.Error())
	}
	by := c.Query("by")
	if !slices.Contains(link.FunnelGroupings, by) {
		return fail(c, fiber.StatusBadRequest, "invalid_by", "by must be network, dialect or institution (or absent)")
	}
	counts, err := a.Funnel.FunnelCounts(c.UserContext(), since, by)
	if err != nil {
		return err
	}
	return c.JSON(funnel.Build(counts, a.FunnelOrder, since, by))
}

// apiError is the one error shape of the API.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// fail answers an error in the API's shape.
func fail(c *fiber.Ctx, status int, code, message string) error {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	return c.Status(status).JSON(e)
}

// authenticate accepts a request whose bearer key is one of the keys,
// compared in constant time.
func (a *API) authenticate(c *fiber.Ctx) error {
	got, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
	if ok {
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		for _, k := range a.Keys {
			want := sha256.Sum256([]byte(k))
			if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
				c.Locals(keyLocal, hex.EncodeToString(sum[:8]))
				return c.Next()
			}
		}
	}
	return fail(c, fiber.StatusUnauthorized, "unauthorized", "a valid Authorization: Bearer key is required")
}

// keyLocal names the caller's key fingerprint in the request's locals.
const keyLocal = "partner.key"

// idempotency is what idempotent hands the handler of a request carrying
// an Idempotency-Key: where its answer is stored and the hash of its body.
// The handler sets stored once it committed the answer with its work.
type idempotency struct {
	scope  string
	hash   []byte
	stored bool
}

// idempotencyLocal names a request's *idempotency in its locals.
const idempotencyLocal = "partner.idempotency"

// idempotent replays the answer to a POST carrying an Idempotency-Key
// already used by the same key on the same route, within IdempotencyTTL,
// and refuses the key with another body (422 idempotency_key_reused). Only
// an answer of work done (2xx) is stored: a request refused by validation
// can be corrected and sent again under the same key.
func (a *API) idempotent(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		key := strings.TrimSpace(c.Get("Idempotency-Key"))
		if key == "" {
			return h(c)
		}
		if len(key) > 255 {
			return fail(c, fiber.StatusBadRequest, "invalid_request", "Idempotency-Key is longer than 255 characters")
		}
		scope := c.Locals(keyLocal).(string) + " " + c.Path() + " " + key
		unlock, err := a.lockKey(c.UserContext(), scope)
		if err != nil {
			return err
		}
		defer unlock()
		body := sha256.Sum256(c.Body())
		prev, ok, err := a.Store.Idempotent(c.UserContext(), scope)
		if err != nil {
			return err
		}
		if ok && a.Now().Before(prev.Created.Add(a.IdempotencyTTL)) {
			if len(prev.RequestHash) > 0 && subtle.ConstantTimeCompare(prev.RequestHash, body[:]) != 1 {
				return fail(c, fiber.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used with another request body: send a new key for a new request")
			}
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Status(prev.Status).Send(prev.Body)
		}
		idem := &idempotency{scope: scope, hash: body[:]}
		c.Locals(idempotencyLocal, idem)
		if err := h(c); err != nil {
			return err
		}
		status := c.Response().StatusCode()
		if idem.stored || status < 200 || status > 299 {
			return nil // stored with the work, or nothing done: a corrected retry may use the key
		}
		answer := link.Answer{Status: status, Body: append([]byte(nil), c.Response().Body()...), Created: a.Now(), RequestHash: idem.hash}
		if err := a.Store.SaveAnswer(c.UserContext(), scope, answer); err != nil {
			// What was asked for is done: answering 500 now would invite a
			// retry that does it twice. Only the replay is lost.
			a.Log.Error().Err(err).Msg("idempotency answer not recorded")
		}
		return nil
	}
}

// msgInvalidPhone explains an invalid_phone refusal.
const msgInvalidPhone = "phone must be a valid phone number: international (+2348031234567) or national in the gateway's country (08031234567)"

// linkRequest is POST /v1/links.
type linkRequest struct {
	Phone       string `json:"phone"`
	Reference   string `json:"reference"`
	Institution string `json:"institution"`
	AuthMethod  string `json:"auth_method"`
	Notify      string `json:"notify"` // "sms": text the customer the code
	// Customer names the person for Mono's v2 sessions; absent, the
	// gateway's [mono] customer templates do.
	Customer *customerRequest `json:"customer"`
	// Language is the language the customer reads (one of [ussd]
	// languages): their session speaks it, and their phone keeps it.
	Language string `json:"language"`
}

// customerRequest is the optional customer of an invitation.
type customerRequest struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// customer checks an invitation's customer and returns it as kept, or a
// refusal. Both fields are optional; what is given must be usable.
func (r *customerRequest) customer() (*link.Customer, *problem) {
	if r == nil || (r.Name == "" && r.Email == "") {
		return nil, nil
	}
	c := &link.Customer{Name: strings.TrimSpace(r.Name), Email: strings.TrimSpace(r.Email)}
	if r.Name != "" && !validText(c.Name, 1, 128) {
		return nil, &problem{status: fiber.StatusBadRequest, code: "invalid_customer", message: "customer.name must be 1 to 128 printable characters"}
	}
	if r.Email != "" {
		a, err := mail.ParseAddress(c.Email)
		if err != nil || a.Address != c.Email || len(c.Email) > 254 {
			return nil, &problem{status: fiber.StatusBadRequest, code: "invalid_customer", message: "customer.email must be an e-mail address (name@example.com)"}
		}
	}
	return c, nil
}

// reauthRequest is POST /v1/reauth.
type reauthRequest struct {
	AccountID string `json:"account_id"`
	Phone     string `json:"phone"`
	Reference string `json:"reference"`
	Notify    string `json:"notify"` // "sms": text the customer the code
	// Language, as for a link.
	Language string `json:"language"`
	// Customer, as for a link: kept with the invitation and shown with it
	// (Mono's reauthorisation sessions name no customer: the account's
	// stays the one it was linked for).
	Customer *customerRequest `json:"customer"`
}

// createLink invites a customer to link an account.
func (a *API) createLink(c *fiber.Ctx) error {
	var req linkRequest
	if err := decodeBody(c, &req); err != nil {
		return fail(c, fiber.StatusBadRequest, "invalid_request", err.Error())
	}
	e164, phoneErr := a.Phones.Normalize(req.Phone)
	switch {
	case phoneErr != nil:
		return fail(c, fiber.StatusBadRequest, "invalid_phone", msgInvalidPhone)
	case !validText(req.Reference, 1, 128):
		return fail(c, fiber.StatusBadRequest, "invalid_reference", "reference is required: 1 to 128 printable characters")
	case req.Institution != "" && !validText(req.Institution, 1, 64):
		return fail(c, fiber.StatusBadRequest, "invalid_institution", "institution must be a Mono institution id")
	case req.AuthMethod != "" && req.AuthMethod != mono.InternetBanking && req.AuthMethod != mono.MobileBanking:
		return fail(c, fiber.StatusBadRequest, "invalid_auth_method", "auth_method must be internet_banking or mobile_banking")
	case req.AuthMethod != "" && req.Institution == "":
		return fail(c, fiber.StatusBadRequest, "invalid_auth_method", "auth_method needs an institution")
	}
	if req.Notify != "" && req.Notify != "sms" {
		return fail(c, fiber.StatusBadRequest, "invalid_notify", `notify must be "sms" or absent`)
	}
	customer, p := req.Customer.customer()
	if p != nil {
		return fail(c, p.status, p.code, p.message)
	}
	if p := a.languageProblem(req.Language); p != nil {
		return fail(c, p.status, p.code, p.message)
	}
	if p := a.institutionProblem(c.UserContext(), req.Institution, req.AuthMethod); p != nil {
		if p.retryAfter != "" {
			c.Set(fiber.HeaderRetryAfter, p.retryAfter)
		}
		return fail(c, p.status, p.code, p.message)
	}
	inv := a.newInvite(link.InviteLink, e164, req.Reference)
	inv.Institution, inv.AuthMethod, inv.Customer, inv.Language = req.Institution, req.AuthMethod, customer, req.Language
	return a.create(c, inv, req.Notify == "sms", "")
}

// institutionWait bounds how long a request waits for Mono's institution
// list when the catalogue has none yet.
const institutionWait = 10 * time.Second

// problem is a refusal to answer in the API's error shape.
type problem struct {
	status        int
	code, message string
	retryAfter    string // seconds, for a refusal worth retrying
}

// institutionProblem checks a link invitation's institution and auth
// method against Mono's list: nil when there is nothing to check or both
// are offered.
func (a *API) institutionProblem(ctx context.Context, id, method string) *problem {
	if id == "" || a.Institutions == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, institutionWait)
	defer cancel()
	inst, ok, err := a.Institutions.Institution(ctx, id)
	switch {
	case err != nil:
		a.Log.Warn().Err(err).Msg("institution list unavailable: invitation refused")
		return &problem{fiber.StatusServiceUnavailable, "institutions_unavailable",
			"Mono's institution list cannot be read now, so the institution cannot be checked: retry later", "10"}
	case !ok:
		return &problem{status: fiber.StatusUnprocessableEntity, code: "unknown_institution",
			message: "institution is not a Mono institution id this gateway can open"}
	case method != "":
		if _, offered := inst.Method(method); !offered {
			return &problem{status: fiber.StatusUnprocessableEntity, code: "auth_method_not_offered",
				message: "institution does not offer auth_method " + method + " here"}
		}
	}
	return nil
}

// createReauth invites a customer to re-authorise a linked account. The
// reauthorisation token is asked of Mono when the customer dials (tokens
// live ten minutes).
func (a *API) createReauth(c *fiber.Ctx) error {
	var req reauthRequest
	if err := decodeBody(c, &req); err != nil {
		return fail(c, fiber.StatusBadRequest, "invalid_request", err.Error())
	}
	e164, phoneErr := a.Phones.Normalize(req.Phone)
	switch {
	case !validText(req.AccountID, 1, 64):
		return fail(c, fiber.StatusBadRequest, "invalid_account_id", "account_id is required: a Mono account id")
	case phoneErr != nil:
		return fail(c, fiber.StatusBadRequest, "invalid_phone", msgInvalidPhone)
	case req.Reference != "" && !validText(req.Reference, 1, 128):
		return fail(c, fiber.StatusBadRequest, "invalid_reference", "reference must be 1 to 128 printable characters")
	case req.Notify != "" && req.Notify != "sms":
		return fail(c, fiber.StatusBadRequest, "invalid_notify", `notify must be "sms" or absent`)
	}
	customer, p := req.Customer.customer()
	if p != nil {
		return fail(c, p.status, p.code, p.message)
	}
	if p := a.languageProblem(req.Language); p != nil {
		return fail(c, p.status, p.code, p.message)
	}
	inv := a.newInvite(link.InviteReauth, e164, req.Reference)
	inv.AccountID, inv.Customer, inv.Language = req.AccountID, customer, req.Language
	bank := ""
	if l, ok, err := a.Store.Link(c.UserContext(), req.AccountID); err != nil {
		return err
	} else if ok {
		if !l.Unlinked.IsZero() {
			return fail(c, fiber.StatusConflict, "account_unlinked", "Mono says this account was unlinked: invite the customer to link it again (POST /v1/links)")
		}
		inv.Institution, inv.AuthMethod, bank = l.Institution, l.AuthMethod, l.Bank
		if inv.Reference == "" {
			inv.Reference = l.Reference
		}
	}
	return a.create(c, inv, req.Notify == "sms", bank)
}

// newInvite starts an invitation.
func (a *API) newInvite(kind, phone, ref string) *link.Invite {
	now := a.Now()
	prefix := "lnk_"
	if kind == link.InviteReauth {
		prefix = "rea_"
	}
	return &link.Invite{ID: prefix + randomID(), Kind: kind, Phone: strings.TrimSpace(phone), Reference: ref,
		Status: link.StatusPending, Created: now, Updated: now, Expires: now.Add(a.InviteTTL)}
}

// create stores an invitation, with the text announcing it when asked
// for and, under the request's Idempotency-Key, the answer reporting it
// (all in one transaction), and answers 201 with it.
func (a *API) create(c *fiber.Ctx, inv *link.Invite, text bool, bank string) error {
	now := a.Now()
	var texts func(*link.Invite) []link.Text
	if text && a.Texts != nil && a.Texts(link.TextInvitation) {
		texts = func(inv *link.Invite) []link.Text {
			return []link.Text{InvitationText(inv, a.ServiceCode, bank, now, a.Location)}
		}
	}
	var body []byte
	encode := func(inv *link.Invite) error {
		var err error
		if body, err = json.Marshal(a.view(inv)); err != nil {
			return fmt.Errorf("encode invitation: %w", err)
		}
		return nil
	}
	key := ""
	var answer func(*link.Invite) (link.Answer, error)
	idem, keyed := c.Locals(idempotencyLocal).(*idempotency)
	if keyed {
		key = idem.scope
		answer = func(inv *link.Invite) (link.Answer, error) {
			err := encode(inv)
			return link.Answer{Status: fiber.StatusCreated, Body: body, Created: now, RequestHash: idem.hash}, err
		}
	}
	if err := a.Store.CreateInviteAnswered(c.UserContext(), inv, a.CodeDigits, now, texts, key, answer); err != nil {
		return err
	}
	if keyed {
		idem.stored = true
	}
	a.Log.Info().Str("invite", inv.ID).Str("kind", inv.Kind).Bool("texted", texts != nil).Msg("invitation created")
	if texts != nil && a.Notify != nil {
		a.Notify()
	}
	if body == nil {
		if err := encode(inv); err != nil {
			return err
		}
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(fiber.StatusCreated).Send(body)
}

// InvitationText is the text telling a customer the code of an invitation.
// Its expiry is shown in loc, the customer's time zone ("2 Jan 15:04 WAT");
// nil is UTC.
func InvitationText(inv *link.Invite, serviceCode, bank string, now time.Time, loc *time.Location) link.Text {
	if loc == nil {
		loc = time.UTC
	}
	return link.Text{ID: "sms_" + link.NewEventID()[4:], Kind: link.TextInvitation, To: inv.Phone, Created: now,
		Data: map[string]string{"kind": inv.Kind, "dial": Dial(serviceCode, inv.Code), "bank": bank,
			"expires": inv.Expires.In(loc).Format("2 Jan 15:04 MST"), "lang": inv.Language}}
}

// getInvite answers GET /v1/links/:id and /v1/reauth/:id.
func (a *API) getInvite(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		inv, err := a.Store.Invite(c.UserContext(), c.Params("id"))
		if errors.Is(err, link.ErrNoInvite) || (err == nil && inv.Kind != kind) {
			return fail(c, fiber.StatusNotFound, "not_found", "no such "+kind)
		}
		if err != nil {
			return err
		}
		return c.JSON(a.view(inv))
	}
}

// listLinks answers GET /v1/links?reference=…|phone=…; the phone is read
// into E.164 as at creation, so any way of writing it finds the same links.
func (a *API) listLinks(c *fiber.Ctx) error {
	ref, phone := c.Query("reference"), c.Query("phone")
	var all []link.Invite
	var err error
	if phone != "" {
		if phone, err = a.Phones.Normalize(phone); err != nil {
			return fail(c, fiber.StatusBadRequest, "invalid_phone", msgInvalidPhone)
		}
	}
	switch {
	case ref != "":
		all, err = a.Store.InvitesByReference(c.UserContext(), ref)
	case phone != "":
		all, err = a.Store.InvitesByPhone(c.UserContext(), phone)
	default:
		return fail(c, fiber.StatusBadRequest, "invalid_request", "give reference or phone")
	}
	if err != nil {
		return err
	}
	out := make([]View, 0, len(all))
	for i := range all {
		if all[i].Kind == link.InviteLink && (phone == "" || link.PhoneKey(all[i].Phone) == link.PhoneKey(phone)) {
			out = append(out, a.view(&all[i]))
		}
	}
	return c.JSON(fiber.Map{"data": out})
}

// View is an invitation as the API shows it.
type View struct {
	ID          string       `json:"id"`
	Kind        string       `json:"kind"`
	Reference   string       `json:"reference,omitempty"`
	Phone       string       `json:"phone"`
	Dial        string       `json:"dial"`
	Status      string       `json:"status"`
	CreatedAt   time.Time    `json:"created_at"`
	ExpiresAt   time.Time    `json:"expires_at"`
	AccountID   string       `json:"account_id,omitempty"`
	Institution *Institution `json:"institution,omitempty"`
	Account     string       `json:"account_number,omitempty"` // masked: ****7338
	AuthMethod  string       `json:"auth_method,omitempty"`
	LinkedAt    *time.Time   `json:"linked_at,omitempty"`
	DataStatus  string       `json:"data_status,omitempty"`
	Language    string       `json:"language,omitempty"`
	// Customer is whom the partner named for Mono's v2 sessions.
	Customer   *link.Customer `json:"customer,omitempty"`
	UnlinkedAt *time.Time     `json:"unlinked_at,omitempty"` // Mono said the account was unlinked: status "unlinked"
}

// Institution names a bank in a View.
type Institution struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// view shows an invitation, with its outcome once there is one: a link
// Mono has since said is unlinked shows as "unlinked", with when.
func (a *API) view(inv *link.Invite) View {
	v := View{ID: inv.ID, Kind: inv.Kind, Reference: inv.Reference, Phone: inv.Phone,
		Dial: Dial(a.ServiceCode, inv.Code), Status: inv.StatusAt(a.Now()),
		CreatedAt: inv.Created.UTC(), ExpiresAt: inv.Expires.UTC(), AccountID: inv.AccountID, AuthMethod: inv.AuthMethod,
		Customer: inv.Customer, Language: inv.Language}
	if inv.Institution != "" {
		v.Institution = &Institution{ID: inv.Institution}
	}
	if l := inv.Link; l != nil {
		v.AccountID, v.Account, v.AuthMethod = l.AccountID, l.Masked, l.AuthMethod
		v.Institution = &Institution{ID: l.Institution, Name: l.Bank}
		at := l.Linked.UTC()
		if !l.Reauthorised.IsZero() {
			at = l.Reauthorised.UTC()
		}
		v.LinkedAt = &at
		v.DataStatus = l.DataStatus
		if !l.Unlinked.IsZero() {
			unlinked := l.Unlinked.UTC()
			v.Status, v.UnlinkedAt = link.StatusUnlinked, &unlinked
		}
	}
	return v
}

// Dial is the string a customer dials for an invitation: the short code
// with the invitation's code after it, "*384*123*4821#".
func Dial(serviceCode, code string) string {
	return strings.TrimSuffix(serviceCode, "#") + "*" + code + "#"
}

// decodeBody reads a JSON object, refusing unknown fields so a typo in a
// field name is reported rather than silently ignored.
func decodeBody(c *fiber.Ctx, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("body must be a JSON object with the documented fields")
	}
	return nil
}

// validText accepts between min and max printable characters.
func validText(s string, min, max int) bool {
	n := 0
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
		n++
	}
	return n >= min && n <= max
}

// randomID is 16 random hex digits.
func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lockKey takes an idempotency key's lock: this process's, then the
// instances' when they share a store.
func (a *API) lockKey(ctx context.Context, scope string) (unlock func(), err error) {
	local := a.locks.Lock(scope)
	if a.Locker == nil {
		return local, nil
	}
	shared, err := a.Locker.LockContext(ctx, "idempotency:"+scope)
	if err != nil {
		local()
		return nil, fmt.Errorf("lock idempotency key: %w", err)
	}
	return func() { shared(); local() }, nil
}
