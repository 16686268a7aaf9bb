package menus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ussdlink/ussdlink/link"
)

// filled returns a session with every stored field set, recursively, to a
// value other than its zero, and the fields kept only sealed (json:"-")
// left empty: a field added without regenerating the encoder is lost in
// the round trip and fails the tests below.
func filled(t *testing.T) *Session {
	t.Helper()
	s := new(Session)
	fill(reflect.ValueOf(s).Elem(), "session")
	return s
}

// fill sets v, named name, to a non-zero value.
func fill(v reflect.Value, name string) {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 10, 33, 33, 11764293, time.UTC).Add(time.Duration(len(name)) * time.Minute)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + name)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(len(name)))
	case reflect.Float64:
		v.SetFloat(float64(len(name)) + 0.25)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Uint8:
		v.SetUint(uint64(len(name)))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), name+"0")
		fill(v.Index(1), name+"1")
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, name+"k")
		fill(e, name+"v")
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), name+"."+f.Name)
		}
	default:
		panic("fill: no value for " + name + " of kind " + v.Kind().String())
	}
}

func TestASessionComesBackFromTheStoreAsItWent(t *testing.T) {
	want := filled(t)
	legacy, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	current, err := encodeData(want)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"in the current format", current},
		{"stored as JSON before it", legacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := new(Session)
			if err := decodeData(tt.data, got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(want)
				t.Fatalf("round trip changed the session:\n got %s\nwant %s", a, b)
			}
		})
	}
	if len(current) >= len(legacy) {
		t.Errorf("the current format (%d bytes) is no smaller than JSON (%d)", len(current), len(legacy))
	}
}

func TestWhatTheUserTypedStaysOutOfTheSessionData(t *testing.T) {
	s := filled(t)
	s.Answers = map[string]string{"password": "Secret-Answer-1"}
	s.Login = map[string]string{"username": "Secret-Login-2"}
	s.SecretsLost = true
	r, err := record(s, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"Secret-Answer-1", "Secret-Login-2"} {
		if bytes.Contains(r.Data, []byte(secret)) {
			t.Fatalf("%q is in the session's data", secret)
		}
		if !bytes.Contains(r.Secrets, []byte(secret)) {
			t.Fatalf("%q is not among the secrets handed to the store to seal", secret)
		}
	}
}

func TestUnreadableSessionDataIsAnErrorNotAPanic(t *testing.T) {
	current, err := encodeData(filled(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty", nil},
		{"an unknown format", "unknown session format", []byte{0x7f, 1, 2}},
		{"cut short", "", current[:len(current)/2]},
		{"trailing bytes", "after the session", append(bytes.Clone(current), 0xc0)},
		{"broken JSON", "", []byte(`{"id":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decodeData(tt.data, new(Session))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeSessionData(f *testing.F) {
	s := &Session{ID: "s1", Phone: "+2348030000000", State: StateBanks, Reply: link.Reply{Text: "Pick your bank"}}
	current, _ := encodeData(s)
	legacy, _ := json.Marshal(s)
	f.Add(current)
	f.Add(legacy)
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Session
		if decodeData(data, &got) != nil {
			return
		}
		if _, err := encodeData(&got); err != nil {
			t.Fatalf("a decoded session does not encode: %v", err)
		}
	})
}

func TestAFinishedSessionIsStoredWithoutWhatOnlyALinkUnderWayNeeded(t *testing.T) {
	for _, state := range []string{StateLinked, StateEnded} {
		t.Run(state, func(t *testing.T) {
			s := filled(t)
			s.State = state
			r, err := record(s, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bank == nil || got.Bank.Methods != nil || got.Bank.Name != s.Bank.Name {
				t.Errorf("bank = %+v, want its name without its login methods", got.Bank)
			}
			if got.Accounts != nil || len(got.Form.Fields) != 0 || got.MonoSession != "" || !got.MonoExpires.IsZero() {
				t.Errorf("the accounts, the form or Mono's session were kept: %+v %+v %q", got.Accounts, got.Form, got.MonoSession)
			}
			// What its repeats, its outcome and a late link need stays.
			if !reflect.DeepEqual(got.Mark, s.Mark) || got.Reply != s.Reply || !reflect.DeepEqual(got.Chosen, s.Chosen) ||
				!reflect.DeepEqual(got.Link, s.Link) || got.Method != s.Method || got.Reference != s.Reference {
				t.Errorf("a finished session lost what it is kept for: %+v", got)
			}
			if s.Bank.Methods == nil || s.Accounts == nil {
				t.Error("encoding changed the session in memory")
			}
		})
	}
}
