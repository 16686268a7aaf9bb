package menus

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/ussdlink/ussdlink/mono/sandbox"
)

func TestSealedValuesOpenInEveryFormatTheyWereSealedIn(t *testing.T) {
	want := Session{
		Answers: map[string]string{"otp": "123456", "answer": "Ikeja"},
		Login:   map[string]string{"username": "ada", "password": "pass1234"},
	}
	current, err := sealValues(&want, false)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := json.Marshal(sealedValues{Answers: want.Answers, Login: want.Login})
	if err != nil {
		t.Fatal(err)
	}
	answersOnly, err := json.Marshal(want.Answers)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		plain     []byte
		wantLogin map[string]string
	}{
		{"in the current format", current, want.Login},
		{"as JSON, before it", legacy, want.Login},
		{"as the form's answers alone, before login answers were kept", answersOnly, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Session
			if err := openValues(tt.plain, &got); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Answers, want.Answers) || !maps.Equal(got.Login, tt.wantLogin) {
				t.Errorf("opened answers %v, login %v; want %v, %v", got.Answers, got.Login, want.Answers, tt.wantLogin)
			}
		})
	}
	if len(current) >= len(legacy) {
		t.Errorf("the current format (%d bytes) is no smaller than JSON (%d)", len(current), len(legacy))
	}
}

func TestBrokenSealedValuesAreAnErrorNotAPanic(t *testing.T) {
	current, err := sealValues(&Session{Answers: map[string]string{"otp": "123456"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	for name, plain := range map[string][]byte{
		"cut short":         current[:len(current)/2],
		"format byte alone": {formatMsgpack},
		"trailing bytes":    append(append([]byte(nil), current...), 0xc0),
		"broken JSON":       []byte(`{"answers":`),
	} {
		t.Run(name, func(t *testing.T) {
			var s Session
			if err := openValues(plain, &s); err == nil {
				t.Errorf("openValues(%q) = nil error, want one", plain)
			}
		})
	}
}

func FuzzOpenSealedValues(f *testing.F) {
	current, _ := sealValues(&Session{Answers: map[string]string{"otp": "1"}, Login: map[string]string{"password": "p"}}, false)
	legacy, _ := json.Marshal(sealedValues{Answers: map[string]string{"otp": "1"}})
	f.Add(current)
	f.Add(legacy)
	f.Fuzz(func(t *testing.T, plain []byte) {
		var s Session
		if openValues(plain, &s) != nil {
			return
		}
		again, err := sealValues(&s, false)
		if err != nil {
			t.Fatalf("opened values do not seal again: %v", err)
		}
		var back Session
		if err := openValues(again, &back); err != nil || !maps.Equal(back.Answers, s.Answers) || !maps.Equal(back.Login, s.Login) {
			t.Fatalf("sealed again and opened: %v, answers %v login %v; want %v %v", err, back.Answers, back.Login, s.Answers, s.Login)
		}
	})
}

func TestSealedValuesAreWrittenAsTheVersionBeforeReadsThemWhenAskedTo(t *testing.T) {
	tests := []struct {
		name       string
		sealedJSON bool
		format     byte
	}{
		{"MessagePack by default", false, formatMsgpack},
		{"JSON during a rolling upgrade", true, '{'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, func(c *Config, _ *sandbox.Options) { c.SealedJSON = tt.sealedJSON })
			r.must(t, "s1", "+234801", "")
			r.must(t, "s1", "+234801", "1")
			r.must(t, "s1", "+234801", "1*user_good")
			r.store.mu.Lock()
			plain := r.store.plain["s1"]
			r.store.mu.Unlock()
			if len(plain) == 0 || plain[0] != tt.format {
				t.Fatalf("sealed values handed to the store begin %q, want %q", plain[:min(len(plain), 1)], tt.format)
			}
			if tt.sealedJSON {
				// What the version before reads: a JSON object of the two maps.
				var v sealedValues
				if err := json.Unmarshal(plain, &v); err != nil || v.Answers["username"] != "user_good" && v.Login["username"] != "user_good" {
					t.Errorf("the JSON written: %v, %+v", err, v)
				}
			}
		})
	}
}
