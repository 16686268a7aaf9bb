package menus

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"github.com/ussdlink/ussdlink/mono"
)

// The customer a plain dial's Mono v2 session is for. Mono v2 wants a
// customer, with a name and an e-mail address, on every session, and keeps
// a customer's accounts together under it; a USSD user cannot be asked for
// an e-mail address on a keypad, and a partner that knows the person names
// them in its invitation. The defaults make one stable customer per phone
// (the same digits give the same address every dial), at a domain reserved
// never to resolve (RFC 2606 .invalid), so nothing Mono might send it can
// reach a stranger. An operator with a domain of its own sets
// [mono] customer-email = "{phone}@customers.example.com".
const (
	DefaultCustomerName  = "USSD {phone}"
	DefaultCustomerEmail = "{phone}@ussdlink.invalid"
)

// customerPlaceholder is the one placeholder of the customer templates.
const customerPlaceholder = "{phone}"

// placeholders finds any {…} in a template.
var placeholders = regexp.MustCompile(`\{[^{}]*\}`)

// expandCustomer fills a customer template for phone: {phone} becomes its
// digits (E.164 without the +).
func expandCustomer(template, phone string) string {
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, phone)
	return strings.ReplaceAll(template, customerPlaceholder, digits)
}

// CheckCustomerTemplates refuses customer templates that cannot make a
// customer: a placeholder other than {phone}, an empty name, or an e-mail
// template that does not give a bare address for a sample phone.
func CheckCustomerTemplates(name, email string) error {
	for key, t := range map[string]string{"customer-name": name, "customer-email": email} {
		for _, p := range placeholders.FindAllString(t, -1) {
			if p != customerPlaceholder {
				return fmt.Errorf("[mono] %s: unknown placeholder %s (only %s)", key, p, customerPlaceholder)
			}
		}
	}
	if strings.TrimSpace(expandCustomer(name, "+2348030000000")) == "" {
		return errors.New("[mono] customer-name must not be empty")
	}
	sample := expandCustomer(email, "+2348030000000")
	if a, err := mail.ParseAddress(sample); err != nil || a.Address != sample {
		return fmt.Errorf("[mono] customer-email %q does not make an e-mail address (%q for +2348030000000)", email, sample)
	}
	return nil
}

// customer is whom the session's Mono sessions are for: the invitation's
// customer where it named one, the templates' otherwise.
func (t *turn) customer() *mono.Customer {
	c := &mono.Customer{Name: t.s.CustomerName, Email: t.s.CustomerEmail}
	if c.Name == "" {
		c.Name = expandCustomer(t.e.cfg.CustomerName, t.s.Phone)
	}
	if c.Email == "" {
		c.Email = expandCustomer(t.e.cfg.CustomerEmail, t.s.Phone)
	}
	return c
}
