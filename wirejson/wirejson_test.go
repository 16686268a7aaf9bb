package wirejson

import (
	"errors"
	"strings"
	"testing"
)

// secret stands for a password or a PIN inside what is read.
const secret = "hunter2-4711"

type form struct {
	User     string `json:"user"`
	Password string `json:"password"`
	PIN      int    `json:"pin"`
}

func TestAFailureNeverQuotesWhatWasRead(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		into   func() any
		strict bool
	}{
		{"cut short inside the secret", `{"password":"` + secret, func() any { return new(form) }, false},
		{"a stray character after it", `{"password":"` + secret + `"x}`, func() any { return new(form) }, false},
		{"the secret where a number goes", `{"pin":"` + secret + `"}`, func() any { return new(form) }, false},
		{"a number where a string goes", `{"user":4711123}`, func() any { return new(form) }, false},
		{"the secret as a key of a map of numbers", `{"` + secret + `":"x"}`, func() any { return new(map[string]int) }, false},
		{"the secret as an unknown key", `{"` + secret + `":1}`, func() any { return new(form) }, true},
		{"a bare secret", secret, func() any { return new(form) }, false},
		{"nothing", ``, func() any { return new(form) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := Unmarshal
			if tt.strict {
				read = UnmarshalStrict
			}
			err := read([]byte(tt.data), tt.into())
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want one wrapping ErrMalformed", err)
			}
			for _, part := range []string{secret, "hunter", "4711"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("error %q quotes %q from what was read", err, part)
				}
			}
		})
	}
}

func TestWhatIsWellFormedIsReadAsEncodingJSONReadsIt(t *testing.T) {
	var f form
	if err := Unmarshal([]byte(`{"user":"ada","password":"p","pin":12,"extra":true}`), &f); err != nil || f != (form{"ada", "p", 12}) {
		t.Errorf("Unmarshal = %+v, %v", f, err)
	}
	var strict form
	if err := UnmarshalStrict([]byte(`{"user":"ada"} trailing`), &strict); err != nil || strict.User != "ada" {
		t.Errorf("UnmarshalStrict = %+v, %v: what follows the first value is not read", strict, err)
	}
	if err := UnmarshalStrict([]byte(`{"user":"ada","extra":1}`), new(form)); !errors.Is(err, ErrMalformed) {
		t.Errorf("UnmarshalStrict with an unknown key = %v", err)
	}
	b, err := Marshal(form{User: "<ada>"})
	if err != nil || string(b) != `{"user":"\u003cada\u003e","password":"","pin":0}` {
		t.Errorf("Marshal = %s, %v: want encoding/json's escaping", b, err)
	}
}
