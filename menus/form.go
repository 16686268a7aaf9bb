package menus

//go:generate go tool msgp -file=form.go -o=form_msgp.go -io=false -tests=false -d "tag json" -d "timezone utc"

import (
	"strings"
	"unicode/utf8"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/screen"
)

// Field is one prompt of a flattened form: what the Connect widget shows as
// one input, the gateway asks on one screen.
type Field struct {
	Name      string `json:"name"`
	Hint      string `json:"hint"`
	Secret    bool   `json:"secret,omitempty"`
	Numeric   bool   `json:"numeric,omitempty"`
	MaxLength int    `json:"max_length,omitempty"`
}

// Form is a Mono ui.form flattened into prompts, one field a screen.
type Form struct {
	Title  string  `json:"title"`
	Fields []Field `json:"fields"`
}

// Flatten turns a Mono form into prompts. Elements that ask for nothing (text,
// images, unknown types without a name) are skipped; a field with no hint
// gets one made from its name.
func Flatten(ui mono.UI) Form {
	f := Form{Title: strings.TrimSpace(ui.Title)}
	seen := make(map[string]bool, len(ui.Form))
	for _, el := range ui.Form {
		if !el.IsInput() || seen[el.Name] {
			continue
		}
		seen[el.Name] = true
		hint := strings.TrimSpace(el.Hint)
		if hint == "" {
			hint = humanize(el.Name)
		}
		f.Fields = append(f.Fields, Field{
			Name:      el.Name,
			Hint:      hint,
			Secret:    el.IsSecret(),
			Numeric:   el.IsNumeric(),
			MaxLength: el.MaxLength,
		})
	}
	return f
}

// Prompt is the screen asking for field i: the form's title on the first
// field, then the field's hint.
func (f Form) Prompt(i int) screen.Screen {
	s := screen.Screen{Prompt: f.Fields[i].Hint, Exit: true}
	if i == 0 {
		s.Title = f.Title
	}
	return s
}

// Check validates a value typed for the field and returns a one-line reason
// when it is refused. The value itself is never part of the reason.
func (fd Field) Check(value string) string {
	switch {
	case value == "":
		return textEmpty
	case !utf8.ValidString(value):
		return textUnreadable
	case fd.MaxLength > 0 && utf8.RuneCountInString(value) > fd.MaxLength:
		return textTooLong(fd.MaxLength)
	case fd.Numeric && !isDigits(value):
		return textDigitsOnly
	}
	return ""
}

// humanize turns a field name like "account_number" into "Account number".
func humanize(name string) string {
	s := strings.NewReplacer("_", " ", "-", " ").Replace(name)
	if s == "" {
		return "Value"
	}
	_, size := utf8.DecodeRuneInString(s) // the whole first letter, not its first byte
	return strings.ToUpper(s[:size]) + s[size:]
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
