package gsm

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTransliterate(t *testing.T) {
	// Every printable ASCII character but the backtick is in GSM-7.
	var ascii strings.Builder
	for c := byte(' '); c < 0x7f; c++ {
		if c != '`' {
			ascii.WriteByte(c)
		}
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty stays empty", "", ""},
		{"Yoruba loses its underdots and tone marks", "Ẹ kú àárọ̀, ṣé dáadáa ni?", "E ku aaro, se daadaa ni?"},
		{"Hausa's hooked letters become plain", "Ɓata ɗaya ƙasa ƴaƴa Ɗan Ƙofa Ƴar", "Bata daya kasa yaya Dan Kofa Yar"},
		{"Hausa's apostrophe is kept as one", "ʼyaʼya", "'ya'ya"},
		{"Igbo loses its dots", "Ị nọ ụlọ? Ṅ", "I no ulo? N"},
		{"plain ASCII is unchanged", "Access Bank (Diamond) 0123-456_789", "Access Bank (Diamond) 0123-456_789"},
		{"all printable ASCII but backtick is unchanged", ascii.String(), ascii.String()},
		{"extension characters are kept", "^{}\\[~]|", "^{}\\[~]|"},
		{"newlines are kept", "Invalid choice.\nTry again.", "Invalid choice.\nTry again."},
		{"curly single quotes become straight", "Ade‘s ‘bank’", "Ade's 'bank'"},
		{"curly double quotes become straight", "“GTBank” „x‟", "\"GTBank\" \"x\""},
		{"guillemets become straight double quotes", "«Kuda»", "\"Kuda\""},
		{"en dash becomes hyphen", "Mon–Fri", "Mon-Fri"},
		{"em dash becomes hyphen", "Bank—Retail", "Bank-Retail"},
		{"minus sign and figure dash become hyphen", "−1‒2", "-1-2"},
		{"ellipsis becomes three dots", "Wait…", "Wait..."},
		{"e acute loses its accent", "Société Générale", "Societe Generale"},
		{"capital I grave loses its accent", "Ìbàdàn", "Ibadan"},
		{"l stroke becomes l", "Łódź łąka", "Lodz laka"},
		{"n tilde loses its tilde", "Señor Ñandú", "Senor Nandu"},
		{"decomposed accents are dropped", "e\u0301e\u0300", "ee"},
		{"backtick becomes apostrophe", "don`t", "don't"},
		{"acute accent becomes apostrophe", "don´t", "don't"},
		{"naira sign becomes N", "₦5,000", "N5,000"},
		{"non-breaking spaces become spaces", "First\u00a0Bank\u202fPlc", "First Bank Plc"},
		{"tab becomes a space", "a\tb", "a b"},
		{"carriage return is dropped", "a\r\nb", "a\nb"},
		{"form feed is dropped", "a\fb", "ab"},
		{"other control characters are dropped", "a\x00\x07\x1bb\x7f", "ab"},
		{"emoji are dropped", "Bank 🏦 app 😀👍🏽", "Bank  app "},
		{"CJK is dropped", "中国银行 Bank of China", " Bank of China"},
		{"Arabic and Cyrillic are dropped", "مصرف Банк", " "},
		{"euro sign is kept", "€5", "€5"},
		{"pound and yen are kept", "£1 ¥2", "£1 ¥2"},
		{"invalid UTF-8 is dropped", "a\xffb\xc3", "ab"},
		{"zero-width characters are dropped", "a\u200bb\ufeffc", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := Transliterate(tt.in), tt.want
			if got != want {
				t.Errorf("Transliterate(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

// TestTransliterateOutputIsGSM checks over thousands of random runes, from
// every plane and from the ranges bank names and titles actually use, that
// nothing outside GSM-7 ever comes out.
func TestTransliterateOutputIsGSM(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ranges := []struct{ lo, hi rune }{
		{0, 0x7f},          // ASCII, controls included
		{0x80, 0x2ff},      // Latin-1, Latin Extended
		{0x300, 0x36f},     // combining marks
		{0x370, 0x52f},     // Greek, Cyrillic
		{0x2000, 0x20cf},   // punctuation, currency
		{0x4e00, 0x9fff},   // CJK
		{0xac00, 0xd7a3},   // Hangul, which NFD decomposes
		{0xfb00, 0xfffd},   // ligatures, presentation forms, specials
		{0x1f300, 0x1faff}, // emoji
		{0, utf8.MaxRune},  // anything at all
	}
	randRune := func() rune {
		r := ranges[rng.IntN(len(ranges))]
		return r.lo + rune(rng.IntN(int(r.hi-r.lo+1)))
	}
	for i := 0; i < 5000; i++ {
		in := string(randRune())
		if i%2 == 1 {
			var b strings.Builder
			for n := rng.IntN(12) + 1; n > 0; n-- {
				b.WriteRune(randRune())
			}
			in = b.String()
		}
		if got := Transliterate(in); !Valid(got) {
			t.Fatalf("Transliterate(%q) = %q, which is not GSM-7", in, got)
		}
	}
}

func TestUnits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty is zero", "", 0},
		{"ASCII letters count one each", "abc", 3},
		{"basic GSM accented letters count one", "éàÑ", 3},
		{"newline counts one", "a\nb", 3},
		{"caret counts two", "^", 2},
		{"braces count two each", "{}", 4},
		{"backslash counts two", "\\", 2},
		{"square brackets count two each", "[]", 4},
		{"tilde counts two", "~", 2},
		{"pipe counts two", "|", 2},
		{"euro counts two", "€", 2},
		{"every extension character counts two", "^{}\\[~]|€", 18},
		{"mixed text adds basic and extension", "Pay €5 [now]", 15},
		{"a non-GSM character counts one", "😀", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := Units(tt.in), tt.want
			if got != want {
				t.Errorf("Units(%q) = %d, want %d", tt.in, got, want)
			}
		})
	}
}

func TestCut(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"an extension character is not split", "ab€", 3, "ab"},
		{"an extension character fits when its two units do", "ab€", 4, "ab€"},
		{"a bracket is not split", "a[b]", 2, "a"},
		{"a multi-byte rune is not split", "héllo", 2, "hé"},
		{"text within the budget is unchanged", "hello", 5, "hello"},
		{"text under the budget is unchanged", "hello", 100, "hello"},
		{"text over the budget is cut to it", "hello", 3, "hel"},
		{"zero budget gives nothing", "hello", 0, ""},
		{"negative budget gives nothing", "hello", -5, ""},
		{"empty stays empty", "", 10, ""},
		{"extension only text cut on whole characters", "€€€", 5, "€€"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := Cut(tt.in, tt.max), tt.want
			if got != want {
				t.Errorf("Cut(%q, %d) = %q, want %q", tt.in, tt.max, got, want)
			}
		})
	}
}

// TestCutProperties checks on random text that cut never exceeds the
// budget, returns a prefix on rune boundaries, and keeps as much as fits.
func TestCutProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pool := []rune("abcXYZ09 .é€^{}[]~|\\😀中")
	for i := 0; i < 3000; i++ {
		rs := make([]rune, rng.IntN(30))
		for j := range rs {
			rs[j] = pool[rng.IntN(len(pool))]
		}
		s, max := string(rs), rng.IntN(40)-2
		got := Cut(s, max)
		if !strings.HasPrefix(s, got) {
			t.Fatalf("Cut(%q, %d) = %q, not a prefix", s, max, got)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Cut(%q, %d) = %q, splits a rune", s, max, got)
		}
		if max <= 0 {
			if got != "" {
				t.Fatalf("Cut(%q, %d) = %q, want empty", s, max, got)
			}
			continue
		}
		if Units(got) > max {
			t.Fatalf("Cut(%q, %d) = %q: %d units", s, max, got, Units(got))
		}
		if rest := s[len(got):]; rest != "" {
			r, _ := utf8.DecodeRuneInString(rest)
			if Units(got+string(r)) <= max {
				t.Fatalf("Cut(%q, %d) = %q, but %q still fits", s, max, got, r)
			}
		}
	}
}
