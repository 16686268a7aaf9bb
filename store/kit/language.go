package kit

import "fmt"

// MaxLanguage is the longest language code a store keeps, in bytes.
const MaxLanguage = 16

// Language checks that language is a code both backends keep for a
// phone (link.Change.Language): at most MaxLanguage
// bytes of a to z and "-", such as "ha" or "pcm". It is a code the
// conversation chose from its menu, never text a user typed: anything
// else is refused rather than stored. "" (no language) passes.
func Language(language string) error {
	if len(language) > MaxLanguage {
		return fmt.Errorf("language code %q is longer than %d bytes", language, MaxLanguage)
	}
	for i := 0; i < len(language); i++ {
		if c := language[i]; (c < 'a' || c > 'z') && c != '-' {
			return fmt.Errorf("language code %q holds %q: want only a to z and -", language, c)
		}
	}
	return nil
}
