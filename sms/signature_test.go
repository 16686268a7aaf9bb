package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// Twilio's worked example (docs and the official SDKs' tests).
const (
	twilioDocToken = "12345"
	twilioDocURL   = "https://mycompany.com/myapp.php?foo=1&bar=2"
	twilioDocSig   = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
)

func twilioDocParams() url.Values {
	return url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+14158675309"},
		"Digits":  {"1234"},
		"From":    {"+14158675309"},
		"To":      {"+18005551212"},
	}
}

func TestTwilioDocumentedExampleSignature(t *testing.T) {
	if got := SignTwilio(twilioDocToken, twilioDocURL, twilioDocParams()); got != twilioDocSig {
		t.Errorf("SignTwilio = %q, want Twilio's %q", got, twilioDocSig)
	}
	if !VerifyTwilio(twilioDocToken, twilioDocURL, twilioDocParams(), twilioDocSig) {
		t.Error("VerifyTwilio refuses Twilio's documented example")
	}
}

// Twilio's current security page shows the example with the numbers
// +12349013030 but keeps the signature of the original +14158675309 request;
// with those numbers the signature is another one (computed independently).
func TestTwilioExampleWithRenumberedCallerHasItsOwnSignature(t *testing.T) {
	p := twilioDocParams()
	p.Set("Caller", "+12349013030")
	p.Set("From", "+12349013030")
	const want = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	if got := SignTwilio(twilioDocToken, twilioDocURL, p); got != want {
		t.Errorf("SignTwilio = %q, want %q", got, want)
	}
	if VerifyTwilio(twilioDocToken, twilioDocURL, p, twilioDocSig) {
		t.Error("the +14158675309 signature verifies a request from +12349013030")
	}
}

func TestTwilioSignatureFailsWhenAnythingChanges(t *testing.T) {
	tampered := func(f func(url.Values)) url.Values {
		p := twilioDocParams()
		f(p)
		return p
	}
	tests := []struct {
		name      string
		token     string
		url       string
		params    url.Values
		signature string
	}{
		{"wrong token", "54321", twilioDocURL, twilioDocParams(), twilioDocSig},
		{"empty token", "", twilioDocURL, twilioDocParams(), twilioDocSig},
		{"tampered param", twilioDocToken, twilioDocURL, tampered(func(p url.Values) { p.Set("Digits", "1235") }), twilioDocSig},
		{"added param", twilioDocToken, twilioDocURL, tampered(func(p url.Values) { p.Set("Body", "STOP") }), twilioDocSig},
		{"removed param", twilioDocToken, twilioDocURL, tampered(func(p url.Values) { p.Del("Digits") }), twilioDocSig},
		{"changed query", twilioDocToken, twilioDocURL + "&extra=1", twilioDocParams(), twilioDocSig},
		{"other path", twilioDocToken, "https://mycompany.com/other.php?foo=1&bar=2", twilioDocParams(), twilioDocSig},
		{"http instead of https", twilioDocToken, "http://mycompany.com/myapp.php?foo=1&bar=2", twilioDocParams(), twilioDocSig},
		{"missing signature", twilioDocToken, twilioDocURL, twilioDocParams(), ""},
		{"garbage signature", twilioDocToken, twilioDocURL, twilioDocParams(), "not a signature"},
		{"truncated signature", twilioDocToken, twilioDocURL, twilioDocParams(), twilioDocSig[:20]},
		{"lower-cased signature", twilioDocToken, twilioDocURL, twilioDocParams(), strings.ToLower(twilioDocSig)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if VerifyTwilio(tt.token, tt.url, tt.params, tt.signature) {
				t.Error("VerifyTwilio accepted it")
			}
		})
	}
}

func TestTwilioSignatureCoversEveryValueOfARepeatedName(t *testing.T) {
	p := url.Values{"MediaUrl": {"https://b.example/2", "https://a.example/1"}, "Body": {"hi"}}
	// By hand: URL, then Body, then MediaUrl with each value in the order given.
	mac := hmac.New(sha1.New, []byte("tok"))
	mac.Write([]byte(twilioDocURL + "Bodyhi" + "MediaUrlhttps://b.example/2" + "MediaUrlhttps://a.example/1"))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))

	sig := SignTwilio("tok", twilioDocURL, p)
	if sig != want {
		t.Errorf("SignTwilio = %q, want %q", sig, want)
	}
	if !VerifyTwilio("tok", twilioDocURL, p, sig) {
		t.Error("VerifyTwilio refuses SignTwilio's signature")
	}
	// Twilio's SDKs sort a repeated name's values: that form verifies too.
	sorted := url.Values{"MediaUrl": {"https://a.example/1", "https://b.example/2"}, "Body": {"hi"}}
	if !VerifyTwilio("tok", twilioDocURL, p, SignTwilio("tok", twilioDocURL, sorted)) {
		t.Error("VerifyTwilio refuses the sorted-values signature")
	}
	dropped := url.Values{"MediaUrl": {"https://b.example/2"}, "Body": {"hi"}}
	if VerifyTwilio("tok", twilioDocURL, dropped, sig) {
		t.Error("VerifyTwilio accepted the signature with a value dropped")
	}
}

func TestTwilioSignatureToleratesTheDefaultPort(t *testing.T) {
	tests := []struct {
		name, signedURL, checkedURL string
		want                        bool
	}{
		{"signed with :443, checked without", "https://mycompany.com:443/myapp.php?foo=1&bar=2", twilioDocURL, true},
		{"signed without, checked with :443", twilioDocURL, "https://mycompany.com:443/myapp.php?foo=1&bar=2", true},
		{"http with :80", "http://mycompany.com:80/sms", "http://mycompany.com/sms", true},
		{"another port is another URL", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", twilioDocURL, false},
		{"the https port on http is another URL", "http://mycompany.com:443/sms", "http://mycompany.com/sms", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sig := SignTwilio(twilioDocToken, tt.signedURL, twilioDocParams())
			if got := VerifyTwilio(twilioDocToken, tt.checkedURL, twilioDocParams(), sig); got != tt.want {
				t.Errorf("VerifyTwilio = %v, want %v", got, tt.want)
			}
		})
	}
}

const termiiBody = `{"type":"inbound","id":"0ea4c23c","message_id":"3017544054459493","sender":"2348031234567","receiver":"Ussdlink","message":"STOP","received_at":"2024-05-01 10:00:00"}`

// Computed independently (Python hmac/hashlib) for termiiBody and the secret
// "termii-secret".
const termiiSig = "bcba5565e5afc565ce8d2934ac8abb7a74390963397cd21d954e80bb1b994ad004e54b8df92224af0c24c2c846b96cf715f6055275569a4ae8a77708966da6b8"

func TestTermiiSignatureRoundTrip(t *testing.T) {
	if got := SignTermii("termii-secret", []byte(termiiBody)); got != termiiSig {
		t.Errorf("SignTermii = %q, want %q", got, termiiSig)
	}
	body := []byte(`{"type":"inbound","message":"1"}`)
	if !VerifyTermii("s3cret", body, SignTermii("s3cret", body)) {
		t.Error("VerifyTermii refuses SignTermii's signature")
	}
}

func TestTermiiSignatureAcceptsEitherHexCase(t *testing.T) {
	for _, sig := range []string{termiiSig, strings.ToUpper(termiiSig), " " + termiiSig + "\n"} {
		if !VerifyTermii("termii-secret", []byte(termiiBody), sig) {
			t.Errorf("VerifyTermii refuses %q", sig)
		}
	}
}

func TestTermiiSignatureFailsWhenAnythingChanges(t *testing.T) {
	tests := []struct {
		name, secret, body, signature string
	}{
		{"tampered body", "termii-secret", strings.Replace(termiiBody, "STOP", "STAR", 1), termiiSig},
		{"body with trailing newline", "termii-secret", termiiBody + "\n", termiiSig},
		{"wrong secret", "other-secret", termiiBody, termiiSig},
		{"empty secret", "", termiiBody, SignTermii("", []byte(termiiBody))},
		{"missing signature", "termii-secret", termiiBody, ""},
		{"not hex", "termii-secret", termiiBody, strings.Repeat("zz", 64)},
		{"truncated", "termii-secret", termiiBody, termiiSig[:64]},
		{"one digit changed", "termii-secret", termiiBody, termiiSig[:127] + "9"},
		{"base64 instead of hex", "termii-secret", termiiBody, base64.StdEncoding.EncodeToString([]byte(termiiSig))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if VerifyTermii(tt.secret, []byte(tt.body), tt.signature) {
				t.Error("VerifyTermii accepted it")
			}
		})
	}
}
