package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/url"
	"slices"
	"strings"
)

// SignTwilio computes Twilio's X-Twilio-Signature for a form POST to fullURL:
// base64(HMAC-SHA1(authToken, fullURL + name + value for each parameter,
// sorted by name)). A name sent more than once contributes each of its values
// in the order given.
func SignTwilio(authToken, fullURL string, params url.Values) string {
	return twilioSignature(authToken, fullURL, params, false)
}

// VerifyTwilio reports whether signature is Twilio's signature of a form POST
// to fullURL with params, compared in constant time. fullURL is the URL as
// configured at Twilio, scheme, host and query included. An empty token or
// signature never verifies.
//
// Besides the exact form SignTwilio computes, two variants Twilio's own
// libraries accept are accepted too, since Twilio's signing is known to be
// inconsistent about them: the URL with its default port added or removed
// (https://host/… against https://host:443/…), and the values of a repeated
// parameter sorted rather than in the order sent. Each still needs the token.
func VerifyTwilio(authToken, fullURL string, params url.Values, signature string) bool {
	signature = strings.TrimSpace(signature)
	if authToken == "" || signature == "" {
		return false
	}
	got := []byte(signature)
	repeated := false
	for _, vs := range params {
		if len(vs) > 1 {
			repeated = true
			break
		}
	}
	ok := false
	for _, u := range twilioURLForms(fullURL) {
		want := twilioSignature(authToken, u, params, false)
		ok = hmac.Equal([]byte(want), got) || ok
		if repeated {
			want = twilioSignature(authToken, u, params, true)
			ok = hmac.Equal([]byte(want), got) || ok
		}
	}
	return ok
}

// twilioSignature computes the signature, with each name's values in the
// order given or, when sortValues is set, sorted.
func twilioSignature(authToken, fullURL string, params url.Values, sortValues bool) string {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	slices.Sort(names)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	for _, name := range names {
		values := params[name]
		if sortValues {
			values = slices.Sorted(slices.Values(values))
		}
		for _, v := range values {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// twilioURLForms is fullURL as given, then (for http and https URLs) with its
// scheme's default port removed or added; nothing else in it is touched.
func twilioURLForms(fullURL string) []string {
	forms := []string{fullURL}
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return forms
	}
	def := map[string]string{"https": "443", "http": "80"}[strings.ToLower(u.Scheme)]
	i := strings.Index(fullURL, "://")
	if def == "" || i < 0 {
		return forms
	}
	rest := fullURL[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	at := strings.LastIndex(authority, "@") + 1
	if authority[at:] != u.Host {
		return forms
	}
	var host string
	switch u.Port() {
	case "":
		host = net.JoinHostPort(u.Hostname(), def)
	case def:
		host = strings.TrimSuffix(u.Host, ":"+def)
	default:
		return forms
	}
	return append(forms, fullURL[:i+3]+authority[:at]+host+rest[end:])
}

// SignTermii computes Termii's X-Termii-Signature for a webhook body: the
// lower-case hex HMAC-SHA512 of the raw body, keyed with the secret.
func SignTermii(secret string, body []byte) string {
	mac := hmac.New(sha512.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// VerifyTermii reports whether signature (hex, either case) is Termii's
// signature of the raw body, compared in constant time. An empty secret or
// signature never verifies.
func VerifyTermii(secret string, body []byte, signature string) bool {
	if secret == "" {
		return false
	}
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha512.Size {
		return false
	}
	mac := hmac.New(sha512.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}
