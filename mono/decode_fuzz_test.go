package mono

import (
	"bytes"
	stdjson "encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/ussdlink/ussdlink/wirejson"
)

// FuzzAnswersDecodeAsTheStandardLibraryDoes holds wirejson (segmentio's
// decoder, chosen for speed) to encoding/json's reading of whatever Mono
// or a network between sends: for each shape the client decodes, both
// accept or both refuse, and what both accept reads the same; and so for
// its strict reading (UnmarshalStrict, refusing unknown fields, as the
// gateway reads its own sealed records) of the same structs against a
// Decoder that disallows them. Neither may panic.
func FuzzAnswersDecodeAsTheStandardLibraryDoes(f *testing.F) {
	for _, seed := range []string{
		gtbank,
		`{"id":"session_1","app":"app","institution":"inst","auth_method":"internet_banking","expiresAt":1796140192918,"ui":{"form":[{"contentType":"string","hint":"UserID","name":"username","type":"elements.input"}],"title":"Log in"}}`,
		`{"status":"200","responseCode":102,"data":{"ui":{"form":[{"type":"elements.input","name":"otp","hint":"Token"}]}}}`,
		`{"status":200,"responseCode":101,"data":[{"index":0,"accountNumber":"0123456789","name":"Ada","balance":12000}]}`,
		`{"data":{"id":"acct_1","meta":{"data_status":"AVAILABLE"}}}`,
		`{"responseCode":"99","data":{"code":"code_1"},"message":"ok"}`,
		`{"Id":"x","ID":"y","id":"z"}`, `[1,2.5e3,"\u00e9",null,true]`, `{"a":"\xff"}`, `{"id":1}`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	structs := []func() any{ // what unknown fields can be found in
		func() any { return new(stepWire) },
		func() any { return new(sessionWire) },
		func() any { return new(institutionWire) },
		func() any { return new(detailsWire) },
	}
	shapes := append(slices.Clone(structs),
		func() any { return new([]Account) },
		func() any { return new(map[string]stdjson.RawMessage) },
		func() any { return new(any) },
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, shape := range shapes {
			fast, std := shape(), shape()
			fastErr, stdErr := wirejson.Unmarshal(data, fast), stdjson.Unmarshal(data, std)
			if (fastErr == nil) != (stdErr == nil) {
				t.Fatalf("%T from %q: wirejson says %v, encoding/json %v", fast, data, fastErr, stdErr)
			}
			if fastErr == nil && !reflect.DeepEqual(fast, std) {
				t.Fatalf("%T from %q: wirejson read %+v, encoding/json %+v", fast, data, fast, std)
			}
		}
		for _, shape := range structs {
			fast, std := shape(), shape()
			dec := stdjson.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			fastErr, stdErr := wirejson.UnmarshalStrict(data, fast), dec.Decode(std)
			if (fastErr == nil) != (stdErr == nil) {
				t.Fatalf("%T strictly from %q: wirejson says %v, encoding/json %v", fast, data, fastErr, stdErr)
			}
			if fastErr == nil && !reflect.DeepEqual(fast, std) {
				t.Fatalf("%T strictly from %q: wirejson read %+v, encoding/json %+v", fast, data, fast, std)
			}
		}
	})
}
