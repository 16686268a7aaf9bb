// Package wirejson reads the JSON Mono answers with, and reads and writes
// the JSON the gateway keeps in its queues and sealed records (what it
// sends Mono is written by package mono, without HTML escaping): with segmentio's
// encoding (a few times faster than encoding/json at reading, and held to
// its reading by a differential fuzz target in package mono), and with
// errors that never quote what was read. segmentio's errors carry up to
// 32 bytes of their input, and encoding/json's a character or a number of
// it; a body Mono echoes or a sealed record may hold a password or a PIN,
// and errors reach logs.
package wirejson

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/segmentio/encoding/json"
)

// Marshal encodes v as encoding/json would.
func Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data into v as encoding/json would; a failure is
// described by position and kind only (see describe).
func Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return describe(v, err, func(fresh any) error { return stdjson.Unmarshal(data, fresh) })
	}
	return nil
}

// UnmarshalStrict is Unmarshal refusing object keys v has no field for;
// what follows the first value is not read.
func UnmarshalStrict(data []byte, v any) error {
	if _, err := json.Parse(data, v, json.DisallowUnknownFields); err != nil {
		return describe(v, err, func(fresh any) error {
			dec := stdjson.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			return dec.Decode(fresh)
		})
	}
	return nil
}

// ErrMalformed is what every decoding failure wraps.
var ErrMalformed = errors.New("malformed JSON")

// describe turns a decoding failure into an error naming where and what
// kind of value, never the input's bytes: it decodes again with
// encoding/json (into a fresh value of v's type, through again), whose
// errors are typed, and keeps of them the offset and the JSON kind.
func describe(v any, err error, again func(fresh any) error) error {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("%w: cannot decode into %T", ErrMalformed, v)
	}
	stdErr := again(reflect.New(t.Elem()).Interface())
	var syntax *stdjson.SyntaxError
	var typed *stdjson.UnmarshalTypeError
	switch {
	case errors.As(stdErr, &syntax):
		return fmt.Errorf("%w at byte %d", ErrMalformed, syntax.Offset)
	case errors.As(stdErr, &typed):
		kind, _, _ := strings.Cut(typed.Value, " ") // "number 1234": the kind, not the number
		return fmt.Errorf("%w: a JSON %s where %s was expected, at byte %d", ErrMalformed, kind, typed.Type, typed.Offset)
	}
	return ErrMalformed // an unknown field (its name is the input's), a truncated value, …
}
