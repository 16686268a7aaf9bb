package link

//go:generate go tool msgp -file=link.go -o=link_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import "time"

// Link is a bank account linked through the gateway: what the partner needs
// to use Mono's account id, and what Mono has said about it since.
type Link struct {
	AccountID   string    `json:"account_id"`
	Phone       string    `json:"phone"`
	Institution string    `json:"institution"`
	Bank        string    `json:"bank"`
	AuthMethod  string    `json:"auth_method"`
	Masked      string    `json:"masked"`
	Currency    string    `json:"currency,omitempty"`
	SessionID   string    `json:"session_id"`
	Reference   string    `json:"reference,omitempty"`
	Linked      time.Time `json:"linked"`

	DataStatus     string    `json:"data_status,omitempty"`     // from Mono's account_updated
	ReauthRequired bool      `json:"reauth_required,omitempty"` // Mono asked for a reauthorisation
	Reauthorised   time.Time `json:"reauthorised,omitempty"`
	Unlinked       time.Time `json:"unlinked,omitempty"` // when Mono said the account was unlinked (account_unlinked)
}
