// Package mono is a typed client for Mono's Partners (Connect) API: the
// institution directory, connect sessions, login and commit steps, the code
// exchange, reauthorisation tokens and account details. It knows nothing of
// USSD; package mono/sandbox serves a fake of the same endpoints.

//go:generate go tool msgp -file=types.go -o=types_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc" -d "ignore Institution SessionRequest Customer Session Reauth Step AccountDetails DetailInstitution Reauthorisation"
package mono

import (
	"encoding/json"
	"strings"
)

// Auth method types an institution may offer.
const (
	InternetBanking = "internet_banking"
	MobileBanking   = "mobile_banking"
)

// Response codes Mono returns from login and commit.
const (
	CodeLinked        = 99  // logged in: data.code can be exchanged for an account id
	CodeSelectAccount = 101 // several accounts: the user picks one
	CodeUserInput     = 102 // the bank asks for more: OTP, security answer, token
	CodeRejected      = 400 // credentials or answer refused
)

// Institution is one bank from GET /v1/institutions.
type Institution struct {
	ID          string       `json:"_id"`
	Name        string       `json:"name"`
	Type        string       `json:"type,omitempty"`
	AuthMethods []AuthMethod `json:"auth_methods"`
	Identifier  string       `json:"identifier,omitempty"`
	Color       string       `json:"primaryColor,omitempty"`
	Country     string       `json:"country,omitempty"`
	Icon        string       `json:"icon,omitempty"`
	UI          *UI          `json:"ui,omitempty"`
	// NIPCode is the bank's NIBSS code, as v3 lists it; BankCode, where
	// Mono gives one too.
	NIPCode  string `json:"nip_code,omitempty"`
	BankCode string `json:"bank_code,omitempty"`
}

// Method returns the auth method of the given type, or false.
func (i Institution) Method(kind string) (AuthMethod, bool) {
	for _, m := range i.AuthMethods {
		if m.Type == kind {
			return m, true
		}
	}
	return AuthMethod{}, false
}

// AuthMethod is one way of logging in to an institution, with the form the
// Connect widget would show for it.
type AuthMethod struct {
	ID   string `json:"_id,omitempty"`
	Type string `json:"type"`
	Name string `json:"name"`
	UI   UI     `json:"ui"`
}

// UI is a titled form: what the Connect widget renders on one page.
type UI struct {
	Title string    `json:"title"`
	Form  []Element `json:"form"`
}

// Element is one form element. Only "elements.input" is collected from the
// user; other element types are informational.
type Element struct {
	Type        string `json:"type"`
	Name        string `json:"name"`
	Hint        string `json:"hint"`
	ContentType string `json:"contentType"`
	MaxLength   int    `json:"maxLength,omitempty"`
}

// IsInput reports whether the element asks the user for a value.
func (e Element) IsInput() bool {
	return e.Name != "" && (e.Type == "" || strings.HasSuffix(e.Type, "input"))
}

// IsSecret reports whether the element's value must be treated as a secret
// (passwords, PINs, OTPs and the like).
func (e Element) IsSecret() bool {
	switch strings.ToLower(e.ContentType) {
	case "password", "pin", "otp", "secret":
		return true
	}
	return false
}

// IsNumeric reports whether the element accepts digits only.
func (e Element) IsNumeric() bool {
	switch strings.ToLower(e.ContentType) {
	case "number", "numeric", "tel", "pin", "digits", "integer":
		return true
	}
	return false
}

// SessionRequest creates a connect session: either for an institution and
// auth method, or (v1 only) from a reauthorisation token. Customer is whom
// a v2 session is for; v1 sends none.
type SessionRequest struct {
	App         string    `json:"app,omitempty"`
	Institution string    `json:"institution,omitempty"`
	AuthMethod  string    `json:"auth_method,omitempty"`
	ReauthToken string    `json:"reauth_token,omitempty"`
	Customer    *Customer `json:"customer,omitempty"`
}

// Customer is the person a v2 session links an account for, as Mono keeps
// them: Mono groups a customer's accounts under it.
type Customer struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Session is a connect session, the handle every login and commit uses.
type Session struct {
	ID          string  `json:"id"`
	App         string  `json:"app"`
	Institution string  `json:"institution"`
	AuthMethod  string  `json:"auth_method"`
	ExpiresAt   int64   `json:"expiresAt"` // epoch milliseconds
	UI          UI      `json:"ui"`
	Reauth      *Reauth `json:"reauth,omitempty"`
}

// Reauth is what a session created from a reauthorisation token says about
// the background login Mono attempted.
type Reauth struct {
	ResponseCode int    `json:"response_code"`
	Message      string `json:"message"`
}

// Account is one account offered in a 101 step. Balance is in major units
// (naira): v2 answers in kobo, and the client converts.
type Account struct {
	AccountNumber string  `json:"accountNumber"`
	Name          string  `json:"name"`
	Type          string  `json:"type"`
	Currency      string  `json:"currency"`
	Status        string  `json:"status"`
	Balance       float64 `json:"balance"`
}

// Step is the answer to a login or commit: linked (Code set), choose an
// account (Accounts set), or more user input (Form set).
type Step struct {
	ResponseCode int
	Code         string    // responseCode 99
	Accounts     []Account // responseCode 101
	Form         *UI       // responseCode 102
	// Relogin marks a 102 of a reauthorisation whose form is the bank's
	// login again (a changed password): it is answered with
	// Client.Relogin, not Commit.
	Relogin bool
	Message string
}

// stepWire is a login or commit answer as Mono sends it.
type stepWire struct {
	Status       json.RawMessage `json:"status"`
	ResponseCode int             `json:"responseCode"`
	Message      string          `json:"message"`
	Data         json.RawMessage `json:"data"`
}

// AccountDetails is GET /v2/accounts/{id}.
type AccountDetails struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	AccountNumber string            `json:"account_number"`
	Currency      string            `json:"currency"`
	Balance       float64           `json:"balance"`
	Type          string            `json:"type"`
	Institution   DetailInstitution `json:"institution"`
	DataStatus    string            `json:"-"`
	AuthMethod    string            `json:"-"`
}

// DetailInstitution is the institution as account details describe it.
type DetailInstitution struct {
	Name     string `json:"name"`
	BankCode string `json:"bankCode"`
	Type     string `json:"type"`
}

// Mask shows only the last four digits of an account number: "****7338".
func Mask(number string) string {
	digits := []rune(number)
	if len(digits) <= 4 {
		return "****" + number
	}
	return "****" + string(digits[len(digits)-4:])
}
