package menus

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var testMarker = newMarker([]byte("transcript-test-key-0123456789ab"))

func TestMarkerNext(t *testing.T) {
	tests := []struct {
		name       string
		prev       string // the transcript the session remembers
		transcript string
		wantInput  string
		wantRepeat bool
		wantErr    error
	}{
		{"the first input follows the empty first hop", "", "1", "1", false, nil},
		{"a first input may itself contain stars", "", "1*2", "1*2", false, nil},
		{"the input after the remembered transcript and its star", "1", "1*3", "3", false, nil},
		{"an input may contain stars, hashes and spaces", "1*3", "1*3*p*ss #1", "p*ss #1", false, nil},
		{"an input that looks like a separator is kept", "1*3", "1*3**", "*", false, nil},
		{"an empty input after the separator", "1", "1*", "", false, nil},
		{"the same transcript again is a repeat", "1*3", "1*3", "", true, nil},
		{"the empty first hop again is a repeat", "", "", "", true, nil},
		{"a transcript with a different start is not an extension", "1*3", "2*3*4", "", false, ErrNotExtension},
		{"a transcript differing in one earlier input is not an extension", "1*3*p*ss", "1*3*p*sx*5", "", false, ErrNotExtension},
		{"a different transcript of the same length is not an extension", "1*3", "1*4", "", false, ErrNotExtension},
		{"a shorter transcript is not an extension", "1*3", "1", "", false, ErrNotExtension},
		{"an empty transcript after input is not an extension", "1", "", "", false, ErrNotExtension},
		{"an extension without the star separator is not an extension", "1", "13", "", false, ErrNotExtension},
		{"an extension with another separator is not an extension", "1*3", "1*3#4", "", false, ErrNotExtension},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input, repeat, err := testMarker.next(testMarker.mark(tt.prev), tt.transcript)
			if got, want := err, tt.wantErr; !errors.Is(got, want) {
				t.Fatalf("next(%q after %q) error = %v, want %v", tt.transcript, tt.prev, got, want)
			}
			if got, want := input, tt.wantInput; got != want {
				t.Errorf("next(%q after %q) input = %q, want %q", tt.transcript, tt.prev, got, want)
			}
			if got, want := repeat, tt.wantRepeat; got != want {
				t.Errorf("next(%q after %q) repeat = %v, want %v", tt.transcript, tt.prev, got, want)
			}
		})
	}
}

func TestMarkerNextCorruptMark(t *testing.T) {
	tests := []struct {
		name       string
		prev       Mark
		transcript string
	}{
		{"a negative length is not an extension", Mark{Len: -1, Sum: testMarker.mark("").Sum}, "1*3"},
		{"a very negative length is not an extension", Mark{Len: -1 << 40}, ""},
		{"a missing sum is not an extension", Mark{Len: 1}, "1*3"},
		{"the zero Mark is not an extension", Mark{}, "1"},
		{"a length past the transcript is not an extension", Mark{Len: 100, Sum: testMarker.mark("1").Sum}, "1*3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := testMarker.next(tt.prev, tt.transcript)
			if got, want := err, ErrNotExtension; !errors.Is(got, want) {
				t.Errorf("next(%+v, %q) error = %v, want %v", tt.prev, tt.transcript, got, want)
			}
		})
	}
}

// TestMarkerNextConversation follows one session hop by hop, remembering
// only the Mark of each transcript, as the engine does.
func TestMarkerNextConversation(t *testing.T) {
	hops := []struct {
		transcript string
		wantInput  string
		wantRepeat bool
	}{
		{"1", "1", false},
		{"1*3", "3", false},
		{"1*3", "", true},
		{"1*3*p*ss #1", "p*ss #1", false},
		{"1*3*p*ss #1*", "", false},
		{"1*3*p*ss #1***1", "*1", false},
	}
	prev := testMarker.mark("")
	for _, h := range hops {
		input, repeat, err := testMarker.next(prev, h.transcript)
		if err != nil {
			t.Fatalf("next(%q): %v", h.transcript, err)
		}
		if got, want := input, h.wantInput; got != want {
			t.Errorf("next(%q) input = %q, want %q", h.transcript, got, want)
		}
		if got, want := repeat, h.wantRepeat; got != want {
			t.Errorf("next(%q) repeat = %v, want %v", h.transcript, got, want)
		}
		prev = testMarker.mark(h.transcript)
	}
}

func TestMarkerKeyed(t *testing.T) {
	other := newMarker([]byte("another-key"))
	tests := []struct {
		name       string
		transcript string
	}{
		{"marks of the empty transcript differ under different keys", ""},
		{"marks of a transcript differ under different keys", "1*3*p*ss #1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := testMarker.mark(tt.transcript), other.mark(tt.transcript)
			if got, want := bytes.Equal(a.Sum, b.Sum), false; got != want {
				t.Errorf("same Sum %x under both keys", a.Sum)
			}
			if got, want := a.Len, b.Len; got != want {
				t.Errorf("Len %d and %d, want equal", got, want)
			}
		})
	}

	// A Mark made under one key is not accepted under another: it is one
	// the other cannot check.
	_, _, err := other.next(testMarker.mark("1"), "1*3")
	if got, want := err, ErrUncheckable; !errors.Is(got, want) {
		t.Errorf("next under another key: error = %v, want %v", got, want)
	}
}

// TestMarkKeepsNoTranscript checks that a Mark holds the transcript's
// length and a 32-byte keyed hash, and nothing of the transcript itself.
func TestMarkKeepsNoTranscript(t *testing.T) {
	tests := []struct {
		name       string
		transcript string
	}{
		{"a short transcript", "1*3"},
		{"a transcript with a password", "1*3*hunter2-secret*#"},
		{"a long transcript", strings.Repeat("password*", 20)},
		{"an empty transcript", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testMarker.mark(tt.transcript)
			if got, want := len(m.Sum), 32; got != want {
				t.Errorf("len(Sum) = %d, want %d", got, want)
			}
			if got, want := m.Len, len(tt.transcript); got != want {
				t.Errorf("Len = %d, want %d", got, want)
			}
			if tt.transcript == "" {
				return
			}
			if bytes.Contains(m.Sum, []byte(tt.transcript)) {
				t.Errorf("Sum %x contains the transcript", m.Sum)
			}
			stored, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			for _, part := range strings.Split(tt.transcript, "*") {
				if len(part) >= 3 && bytes.Contains(stored, []byte(part)) {
					t.Errorf("stored Mark %s contains %q", stored, part)
				}
			}
		})
	}
}

func TestMarkerChain(t *testing.T) {
	start := testMarker.mark("")
	tests := []struct {
		name      string
		prev      Mark
		a, b      string
		wantEqual bool
	}{
		{"the same input gives the same mark", start, "1", "1", true},
		{"a secret input gives the same mark again", start, "p*ss #1", "p*ss #1", true},
		{"different inputs give different marks", start, "1", "2", false},
		{"an empty and a non-empty input differ", start, "", "0", false},
		{"inputs of the same length differ", start, "12", "21", false},
		{"the same input after a later mark gives the same mark", testMarker.mark("1"), "3", "3", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := testMarker.chain(tt.prev, tt.a), testMarker.chain(tt.prev, tt.b)
			if got, want := bytes.Equal(a.Sum, b.Sum), tt.wantEqual; got != want {
				t.Errorf("chain(%q) and chain(%q) equal = %v, want %v", tt.a, tt.b, got, want)
			}
			if got, want := a.Len, tt.prev.Len+1+len(tt.a); got != want {
				t.Errorf("chain(%q).Len = %d, want %d", tt.a, got, want)
			}
			if got, want := len(a.Sum), 32; got != want {
				t.Errorf("len(Sum) = %d, want %d", got, want)
			}
		})
	}

	t.Run("the same input after different marks gives different marks", func(t *testing.T) {
		a, b := testMarker.chain(testMarker.mark("1"), "5"), testMarker.chain(testMarker.mark("2"), "5")
		if got, want := bytes.Equal(a.Sum, b.Sum), false; got != want {
			t.Errorf("equal = %v, want %v", got, want)
		}
	})
	t.Run("a split input chains differently from a joined one", func(t *testing.T) {
		split := testMarker.chain(testMarker.chain(start, "1"), "3")
		joined := testMarker.chain(start, "1*3")
		if got, want := bytes.Equal(split.Sum, joined.Sum), false; got != want {
			t.Errorf("equal = %v, want %v", got, want)
		}
	})
	t.Run("chains differ under different keys", func(t *testing.T) {
		other := newMarker([]byte("another-key"))
		a, b := testMarker.chain(start, "1"), other.chain(start, "1")
		if got, want := bytes.Equal(a.Sum, b.Sum), false; got != want {
			t.Errorf("equal = %v, want %v", got, want)
		}
	})
}

func FuzzTranscriptNext(f *testing.F) {
	f.Add([]byte("key"), "", "1", 0, []byte(nil))
	f.Add([]byte("key"), "1", "1*3", 3, []byte("sum"))
	f.Add([]byte("key"), "1*3", "1*3*p*ss #1", -1, []byte(nil))
	f.Add([]byte("key"), "1*3", "1*3", 100, []byte{1, 2, 3})
	f.Add([]byte(""), "1*3", "2*3", -100, []byte(nil))
	f.Add([]byte("k"), "1", "1*", 1, []byte(nil))
	f.Fuzz(func(t *testing.T, key []byte, prev, transcript string, badLen int, badSum []byte) {
		m := newMarker(key)
		input, repeat, err := m.next(m.mark(prev), transcript)
		switch {
		case err != nil:
			if !errors.Is(err, ErrNotExtension) {
				t.Fatalf("next(%q after %q): unexpected error %v", transcript, prev, err)
			}
			if strings.HasPrefix(transcript, prev+"*") || (prev == "" && transcript != "") || transcript == prev {
				t.Fatalf("next(%q after %q) refused an extension: %v", transcript, prev, err)
			}
		case repeat:
			if transcript != prev {
				t.Fatalf("next(%q after %q) is a repeat", transcript, prev)
			}
		case prev == "":
			if input != transcript {
				t.Fatalf("next(%q after %q) = %q", transcript, prev, input)
			}
		default:
			if prev+"*"+input != transcript {
				t.Fatalf("next(%q after %q) = %q", transcript, prev, input)
			}
		}

		// A stored Mark of any shape, corrupt or forged, never panics.
		m.next(Mark{Len: badLen, Sum: badSum}, transcript)
	})
}

func TestMarksSurviveARotatedSealKeyAndALostOneIsToldApart(t *testing.T) {
	oldKey, newKey := []byte("transcript-key-before-rotation"), []byte("transcript-key-after-rotation!")
	before := newMarker(oldKey)
	prev := before.mark("1*user_good")
	tests := []struct {
		name    string
		m       marker
		prev    Mark
		wantErr error
		want    string
	}{
		{"the previous key still checks its marks", newMarker(newKey, oldKey), prev, nil, "pass_good"},
		{"a mark from before keys were named is checked under every key", newMarker(newKey, oldKey), Mark{Len: prev.Len, Sum: prev.Sum}, nil, "pass_good"},
		{"a mark under a key no longer held cannot be checked", newMarker(newKey), prev, ErrUncheckable, ""},
		{"a transcript that does not continue is refused as before", newMarker(newKey, oldKey), before.mark("1*someone_else"), ErrNotExtension, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := tt.m.next(tt.prev, "1*user_good*pass_good")
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("next = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if newMarker(newKey, oldKey).mark("1").Key != keyID(newKey) {
		t.Errorf("new marks are not made with the current key")
	}
}
