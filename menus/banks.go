package menus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ussdlink/ussdlink/gsm"
	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/mono"
)

// fetchBanks asks Mono for the institutions, keeping the auth methods a
// user can take through the screens (those whose form asks for something).
func (e *Engine) fetchBanks(ctx context.Context) ([]*Bank, error) {
	list, err := e.mono.Institutions(ctx)
	if err != nil {
		return nil, fmt.Errorf("list institutions: %w", err)
	}
	var banks []*Bank
	for _, inst := range list {
		if inst.ID == "" || strings.TrimSpace(inst.Name) == "" {
			continue
		}
		b := &Bank{ID: inst.ID, Name: strings.TrimSpace(inst.Name)}
		for _, m := range inst.AuthMethods {
			if len(Flatten(m.UI).Fields) > 0 {
				b.Methods = append(b.Methods, m)
			}
		}
		banks = append(banks, b)
	}
	if len(banks) == 0 {
		return nil, errors.New("list institutions: mono listed no institutions")
	}
	return banks, nil
}

// Prefetch starts loading the institution list, so the first dial does not
// wait for it.
func (e *Engine) Prefetch() { e.banks.Prefetch() }

// Institution returns the institution Mono lists under id, from the
// engine's cached catalogue (fetched when needed, waited for until ctx is
// done), with the auth methods a user can take through the screens (those
// whose form asks for something), or false when Mono does not list it. An
// error means the list could not be read, so nothing can be said of id.
// The partner API checks invitations with it.
func (e *Engine) Institution(ctx context.Context, id string) (mono.Institution, bool, error) {
	banks, err := e.banks.Get(ctx)
	if err != nil {
		return mono.Institution{}, false, err
	}
	for _, b := range banks {
		if b.ID == id {
			return mono.Institution{ID: b.ID, Name: b.Name, AuthMethods: slices.Clone(b.Methods)}, true, nil
		}
	}
	return mono.Institution{}, false, nil
}

// filterBanks returns the banks whose name, or a word of it, starts with the
// typed letters (case and accents ignored). An empty filter keeps them all.
func filterBanks(banks []*Bank, typed string) []*Bank {
	typed = strings.ToLower(strings.TrimSpace(gsm.Transliterate(typed)))
	if typed == "" {
		return banks
	}
	var out []*Bank
	for _, b := range banks {
		name := strings.ToLower(gsm.Transliterate(b.Name))
		if strings.HasPrefix(name, typed) || strings.HasPrefix(strings.ReplaceAll(name, " ", ""), typed) {
			out = append(out, b)
			continue
		}
		for _, w := range strings.Fields(name) {
			if strings.HasPrefix(w, typed) {
				out = append(out, b)
				break
			}
		}
	}
	return out
}

// bankByID finds an institution in the catalogue.
func (t *turn) bankByID(id string) *Bank {
	banks, _ := t.e.banks.Get(t.bounded)
	for _, b := range banks {
		if b.ID == id {
			return b
		}
	}
	return nil
}

// openInstitution goes straight to an institution (and auth method, when
// given and offered), as a shortcut or an invitation asks. It reports
// whether the institution could be opened.
func (t *turn) openInstitution(id, method string) bool {
	b := t.bankByID(id)
	if b == nil {
		t.log.Warn().Str("institution", id).Msg("institution not in Mono's list")
		return false
	}
	if method != "" {
		for _, m := range b.Methods {
			if m.Type == method {
				t.s.Bank = b
				t.emit(link.TypeInstitutionSelected, map[string]any{"authMethod": method})
				t.fire(EventOpenForm, args{bank: b, method: m.Type})
				return true
			}
		}
	}
	t.chooseBank(b)
	return t.s.State != StateBanks
}

// bankBackoff is how long after a failed fetch of the institutions the
// next is tried: hops meanwhile are told the banks are unavailable at once.
const bankBackoff = 10 * time.Second
