package menus

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ussdlink/ussdlink/mono"
	"github.com/ussdlink/ussdlink/screen"
)

func TestFlatten(t *testing.T) {
	tests := []struct {
		name string
		ui   mono.UI
		want Form
	}{
		{
			name: "uses the title and keeps hints",
			ui: mono.UI{Title: "  Log in to GTBank ", Form: []mono.Element{
				{Type: "elements.input", Name: "username", Hint: "User ID", ContentType: "text"},
			}},
			want: Form{Title: "Log in to GTBank", Fields: []Field{{Name: "username", Hint: "User ID"}}},
		},
		{
			name: "skips elements that ask for nothing",
			ui: mono.UI{Title: "Login", Form: []mono.Element{
				{Type: "elements.text", Name: "notice", Hint: "Use your internet banking details"},
				{Type: "elements.image", Name: "logo"},
				{Type: "elements.input", Hint: "no name"},
				{Type: "elements.input", Name: "username", Hint: "User ID"},
			}},
			want: Form{Title: "Login", Fields: []Field{{Name: "username", Hint: "User ID"}}},
		},
		{
			name: "skips a duplicate name and keeps the first",
			ui: mono.UI{Title: "Login", Form: []mono.Element{
				{Type: "elements.input", Name: "username", Hint: "User ID"},
				{Type: "elements.input", Name: "username", Hint: "Username again"},
				{Type: "elements.input", Name: "password", Hint: "Password", ContentType: "password"},
			}},
			want: Form{Title: "Login", Fields: []Field{
				{Name: "username", Hint: "User ID"},
				{Name: "password", Hint: "Password", Secret: true},
			}},
		},
		{
			name: "makes a hint from the name when empty",
			ui: mono.UI{Form: []mono.Element{
				{Type: "elements.input", Name: "account_number", ContentType: "number", MaxLength: 10},
				{Type: "elements.input", Name: "user-id", Hint: "   "},
			}},
			want: Form{Fields: []Field{
				{Name: "account_number", Hint: "Account number", Numeric: true, MaxLength: 10},
				{Name: "user-id", Hint: "User id"},
			}},
		},
		{
			name: "marks password content as secret",
			ui: mono.UI{Form: []mono.Element{
				{Type: "elements.input", Name: "password", Hint: "Password", ContentType: "password"},
			}},
			want: Form{Fields: []Field{{Name: "password", Hint: "Password", Secret: true}}},
		},
		{
			name: "marks number content as numeric with its max length",
			ui: mono.UI{Form: []mono.Element{
				{Type: "elements.input", Name: "bvn", Hint: "BVN", ContentType: "number", MaxLength: 11},
			}},
			want: Form{Fields: []Field{{Name: "bvn", Hint: "BVN", Numeric: true, MaxLength: 11}}},
		},
		{
			name: "marks a PIN as secret and numeric",
			ui: mono.UI{Form: []mono.Element{
				{Type: "elements.input", Name: "pin", Hint: "PIN", ContentType: "pin", MaxLength: 4},
			}},
			want: Form{Fields: []Field{{Name: "pin", Hint: "PIN", Secret: true, Numeric: true, MaxLength: 4}}},
		},
		{
			name: "an element without a type is an input",
			ui: mono.UI{Form: []mono.Element{
				{Name: "answer", Hint: "Mother's maiden name"},
			}},
			want: Form{Fields: []Field{{Name: "answer", Hint: "Mother's maiden name"}}},
		},
		{
			name: "a form without inputs has no fields",
			ui: mono.UI{Title: "Info", Form: []mono.Element{
				{Type: "elements.text", Name: "info", Hint: "Nothing to type"},
			}},
			want: Form{Title: "Info"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := Flatten(tt.ui), tt.want
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Flatten() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestHumanize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"underscores become spaces and the first letter is capitalised", "account_number", "Account number"},
		{"dashes become spaces", "user-id", "User id"},
		{"a plain name is capitalised", "password", "Password"},
		{"an empty name becomes Value", "", "Value"},
		{"a non-ASCII first letter is capitalised whole", "ñame", "Ñame"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := humanize(tt.in), tt.want
			if got != want {
				t.Errorf("humanize(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

func TestFormPrompt(t *testing.T) {
	f := Form{Title: "Log in to GTBank", Fields: []Field{
		{Name: "username", Hint: "User ID"},
		{Name: "password", Hint: "Password", Secret: true},
	}}
	tests := []struct {
		name  string
		field int
		want  screen.Screen
	}{
		{"the first prompt carries the title", 0, screen.Screen{Title: "Log in to GTBank", Prompt: "User ID", Exit: true}},
		{"a later prompt has no title", 1, screen.Screen{Prompt: "Password", Exit: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := f.Prompt(tt.field), tt.want
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Prompt(%d) = %+v, want %+v", tt.field, got, want)
			}
		})
	}
}

func TestFieldCheck(t *testing.T) {
	text := Field{Name: "username", Hint: "User ID"}
	short := Field{Name: "username", Hint: "User ID", MaxLength: 4}
	account := Field{Name: "account_number", Hint: "Account number", Numeric: true, MaxLength: 10}
	password := Field{Name: "password", Hint: "Password", Secret: true}
	pin := Field{Name: "pin", Hint: "PIN", Secret: true, Numeric: true, MaxLength: 4}
	tests := []struct {
		name  string
		field Field
		value string
		want  string
	}{
		{"refuses an empty value", text, "", textEmpty},
		{"refuses an empty password", password, "", textEmpty},
		{"accepts a plain value", text, "ade.bayo", ""},
		{"refuses a value longer than max length", short, "abcde", textTooLong(4)},
		{"accepts a value of exactly max length", short, "abcd", ""},
		{"counts max length in runes not bytes", short, "ññññ", ""},
		{"refuses too many runes", short, "ñññññ", textTooLong(4)},
		{"refuses a numeric value that is too long", account, "01234567890", textTooLong(10)},
		{"accepts digits for a numeric field", account, "0123456789", ""},
		{"refuses letters in a numeric field", account, "01234a6789", textDigitsOnly},
		{"refuses spaces in a numeric field", account, "0123 56789", textDigitsOnly},
		{"refuses a sign in a numeric field", account, "-12345", textDigitsOnly},
		{"refuses non-ASCII digits in a numeric field", account, "١٢٣", textDigitsOnly},
		{"refuses a star in a PIN", pin, "12*4", textDigitsOnly},
		{"accepts a PIN", pin, "0000", ""},
		{"accepts a password with star, hash and spaces", password, "p*ss #1 w0rd*", ""},
		{"accepts a password of only stars and hashes", password, "*#*#", ""},
		{"accepts a password with leading and trailing spaces", password, " secret ", ""},
		{"refuses unreadable bytes", password, "p\xffss", textUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.field.Check(tt.value), tt.want
			if got != want {
				t.Errorf("Check(%q) = %q, want %q", tt.value, got, want)
			}
			if got != "" && tt.value != "" && strings.Contains(got, tt.value) {
				t.Errorf("Check(%q) = %q, which contains the value", tt.value, got)
			}
		})
	}
}

// TestFieldCheckNeverEchoesValue checks that no refusal repeats what was
// typed: secrets included, whatever the reason.
func TestFieldCheckNeverEchoesValue(t *testing.T) {
	fields := []Field{
		{Name: "username"},
		{Name: "username", MaxLength: 2},
		{Name: "account_number", Numeric: true, MaxLength: 10},
		{Name: "pin", Secret: true, Numeric: true, MaxLength: 4},
	}
	values := []string{"Zq9", "Zq9Zq9Zq9Zq9", "99999999999", "1234567", "p*ss #1", "hunter2 *#",
		"Zq9\xffZq9", "\xff\xfe", "ñññññ", "12*4"}
	for _, fd := range fields {
		for _, v := range values {
			if reason := fd.Check(v); reason != "" && strings.Contains(reason, v) {
				t.Errorf("%+v: Check(%q) = %q, which contains the value", fd, v, reason)
			}
		}
	}
}
