// Package gsm is the GSM 03.38 alphabet a handset shows without switching
// to UCS-2: text turned into it, its length in units, and cutting to a
// budget. USSD screens and text messages both live within it.
package gsm

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// gsmBasic is the GSM 03.38 default alphabet less the escape character.
// A screen made only of these (and gsmExtension) stays in 7-bit encoding
// on the handset; one character outside it switches the whole screen to
// UCS-2 and halves the budget.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension holds the characters sent as escape + code: two units each.
const gsmExtension = "^{}\\[~]|€\f"

// gsmSet classifies a rune: 0 not encodable, 1 basic, 2 extension.
var gsmSet = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// asciiClass is gsmSet for the ASCII runes, the common case, read without
// a map lookup.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		t[r] = uint8(gsmSet[r])
	}
	return t
}()

// class is gsmSet[r].
func class(r rune) int {
	if r < utf8.RuneSelf {
		return int(asciiClass[r])
	}
	return gsmSet[r]
}

// lookalikes maps common non-GSM characters from bank names, titles and hints
// to their plain equivalents.
var lookalikes = map[rune]string{
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '`': "'", '´': "'",
	'“': "\"", '”': "\"", '„': "\"", '‟': "\"", '″': "\"", '«': "\"", '»': "\"",
	'–': "-", '—': "-", '‒': "-", '―': "-", '−': "-", '‐': "-", '‑': "-",
	'…': "...", '•': "-", '·': "-",
	'\u00a0': " ", '\u2007': " ", '\u202f': " ", '\t': " ",
	'ß': "ss", 'æ': "ae", 'Æ': "AE", 'ø': "o", 'Ø': "O", 'œ': "oe", 'Œ': "OE",
	'ł': "l", 'Ł': "L", 'đ': "d", 'Đ': "D", 'ı': "i",
	'₦': "N", '¢': "c", '©': "(c)", '®': "(R)", '™': "TM",
	// Hausa's hooked letters and its apostrophe, as Hausa is written in
	// SMS (Yoruba's and Igbo's underdots and tone marks are combining
	// marks, dropped above: ẹ→e, ọ→o, ṣ→s, ị→i, ụ→u, ṅ→n).
	'ɓ': "b", 'Ɓ': "B", 'ɗ': "d", 'Ɗ': "D", 'ƙ': "k", 'Ƙ': "K", 'ƴ': "y", 'Ƴ': "Y", 'ʼ': "'",
}

// Transliterate returns s in plain GSM 7-bit text: curly quotes become
// straight, accented letters lose their accents, dashes and ellipses become
// ASCII, and anything else outside the GSM alphabet is dropped. It is applied
// to every text that comes from Mono before it reaches a screen.
func Transliterate(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue // a combining accent, split off by NFD
		}
		if alt, ok := lookalikes[r]; ok {
			b.WriteString(alt)
			continue
		}
		if r < 0x7f && (r >= ' ' || r == '\n') {
			b.WriteRune(r)
			continue
		}
		if class(r) > 0 && r != '\r' && r != '\f' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isPlain reports whether s is printable ASCII (and newlines), the common case.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !KeptASCII(s[i]) {
			return false
		}
	}
	return true
}

// KeptASCII reports whether Transliterate keeps byte c as it is: printable
// ASCII and the newline, but the backtick, which it replaces. A string of
// such bytes alone is returned unchanged.
func KeptASCII(c byte) bool { return c < 0x7f && (c >= ' ' || c == '\n') && c != '`' }

// Units counts s in GSM 7-bit units, the measure of a screen's budget:
// extension characters count two; a character outside the alphabet counts
// one (Transliterate removes those before anything is counted for real).
func Units(s string) int {
	n := 0
	for _, r := range s {
		if class(r) == 2 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// Cut returns the longest prefix of s that fits in max units.
func Cut(s string, max int) string {
	if max <= 0 {
		return ""
	}
	n := 0
	for i, r := range s {
		w := 1
		if class(r) == 2 {
			w = 2
		}
		if n+w > max {
			return s[:i]
		}
		n += w
	}
	return s
}

// Valid reports whether every rune of s is in the GSM 03.38 default
// alphabet or its extension table: a handset shows it in 7-bit encoding.
func Valid(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(gsmBasic, r) && !strings.ContainsRune(gsmExtension, r) {
			return false
		}
	}
	return utf8.ValidString(s)
}
