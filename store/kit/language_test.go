package kit

import (
	"strings"
	"testing"
)

func TestLanguageAcceptsOnlyShortCodesOfLowercaseLettersAndHyphens(t *testing.T) {
	tests := []struct {
		name     string
		language string
		ok       bool
	}{
		{"no language", "", true},
		{"a two-letter code", "ha", true},
		{"a three-letter code", "pcm", true},
		{"a code with a hyphen", "en-ng", true},
		{"a code of the longest length", strings.Repeat("a", MaxLanguage), true},
		{"a code one byte too long", strings.Repeat("a", MaxLanguage+1), false},
		{"an uppercase letter", "Ha", false},
		{"a digit", "ha1", false},
		{"an underscore", "en_ng", false},
		{"a space", "ha ", false},
		{"a NUL", "ha\x00", false},
		{"a letter outside ASCII", "yó", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Language(tt.language); (err == nil) != tt.ok {
				t.Errorf("Language(%q) = %v; want accepted %v", tt.language, err, tt.ok)
			}
		})
	}
}
