package menus

//go:generate go tool msgp -file=sealed.go -o=sealed_msgp.go -io=false -tests=false -unexported -d "tag json"

import (
	"fmt"

	"github.com/ussdlink/ussdlink/wirejson"
)

// sealedValues is what a session keeps only sealed: the current form's
// answers and the login answers kept for a fresh login.
type sealedValues struct {
	Answers map[string]string `json:"answers,omitempty"`
	Login   map[string]string `json:"login,omitempty"`
}

// sealValues encodes what s keeps sealed, for the store to seal: in the
// current format (formatMsgpack, then a MessagePack map), read back on
// every hop after the first answer; as JSON with asJSON, the form
// versions before it read.
func sealValues(s *Session, asJSON bool) ([]byte, error) {
	v := sealedValues{Answers: s.Answers, Login: s.Login}
	if asJSON {
		return wirejson.Marshal(v)
	}
	return v.MarshalMsg(append(make([]byte, 0, 1+v.Msgsize()), formatMsgpack))
}

// openValues reads sealed values into s, in any format they were sealed
// in: MessagePack; JSON before it; and, before login answers were kept,
// a JSON object of the form's answers alone.
func openValues(plain []byte, s *Session) error {
	var v sealedValues
	if len(plain) > 0 && plain[0] == formatMsgpack {
		rest, err := v.UnmarshalMsg(plain[1:])
		if err == nil && len(rest) > 0 {
			err = fmt.Errorf("%d bytes after the sealed values", len(rest))
		}
		if err != nil {
			return err
		}
		s.Answers, s.Login = v.Answers, v.Login
		return nil
	}
	if wirejson.UnmarshalStrict(plain, &v) == nil {
		s.Answers, s.Login = v.Answers, v.Login
		return nil
	}
	return wirejson.Unmarshal(plain, &s.Answers)
}
