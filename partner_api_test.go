package main

import (
	"strings"
	"testing"
)

func TestPartnerAPIAuthAndValidation(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	valid := map[string]any{"phone": "+2348071000001", "reference": "loan-1"}
	cases := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		status int
		code   string
	}{
		{"a missing key is refused", "POST", "/v1/links", "", valid, 401, "unauthorized"},
		{"a wrong key is refused", "POST", "/v1/links", "pk_wrong", valid, 401, "unauthorized"},
		{"reading without a key is refused", "GET", "/v1/links?phone=%2B2348071000001", "", nil, 401, "unauthorized"},
		{"a phone that is not one is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "call me", "reference": "r"}, 400, "invalid_phone"},
		{"a missing reference is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001"}, 400, "invalid_reference"},
		{"an unknown auth method is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001", "reference": "r", "institution": "x", "auth_method": "carrier_pigeon"}, 400, "invalid_auth_method"},
		{"an unknown field is refused", "POST", "/v1/links", testAPIKey, map[string]any{"phone": "+2348071000001", "reference": "r", "referense": "typo"}, 400, "invalid_request"},
		{"a reauth without an account is refused", "POST", "/v1/reauth", testAPIKey, map[string]any{"phone": "+2348071000001"}, 400, "invalid_account_id"},
		{"an unknown link is not found", "GET", "/v1/links/lnk_nope", testAPIKey, nil, 404, "not_found"},
		{"a list without a filter is refused", "GET", "/v1/links", testAPIKey, nil, 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := call(t, m, tc.method, tc.path, tc.key, tc.body, nil)
			if status != tc.status {
				t.Fatalf("status = %d, want %d (%v)", status, tc.status, out)
			}
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] != tc.code || e["message"] == "" {
				t.Errorf("error = %v, want code %q with a message", out, tc.code)
			}
		})
	}
	if _, out := call(t, m, "GET", "/v1/links?phone=%2B2348071000001", testAPIKey, nil, nil); len(out["data"].([]any)) != 0 {
		t.Errorf("refused requests created invitations: %v", out)
	}
}

func TestIdempotencyKeysAreHonest(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	const phone = "+2348071000101"
	body := func(ref string) map[string]any { return map[string]any{"phone": phone, "reference": ref} }

	t.Run("a refused request does not take its key: the corrected retry succeeds", func(t *testing.T) {
		if a := postLink(t, m, "fix-1", map[string]any{"phone": phone}); a.status != 400 {
			t.Fatalf("without a reference = %d %v, want 400", a.status, a.body)
		}
		if a := postLink(t, m, "fix-1", body("loan-fixed")); a.status != 201 || a.replayed || a.body["reference"] != "loan-fixed" {
			t.Fatalf("corrected retry = %d %v (replayed %v), want 201 with the new invitation", a.status, a.body, a.replayed)
		}
	})
	t.Run("a replay answers the first answer, creating nothing", func(t *testing.T) {
		first := postLink(t, m, "same-1", body("loan-same"))
		again := postLink(t, m, "same-1", body("loan-same"))
		if first.status != 201 || again.status != 201 || !again.replayed || again.body["id"] != first.body["id"] || again.body["dial"] != first.body["dial"] {
			t.Fatalf("replay = %d %v (replayed %v), want the first answer %v", again.status, again.body, again.replayed, first.body)
		}
	})
	t.Run("the same key with another body is refused", func(t *testing.T) {
		if a := postLink(t, m, "reused-1", body("loan-a")); a.status != 201 {
			t.Fatalf("first = %d %v", a.status, a.body)
		}
		if a := postLink(t, m, "reused-1", body("loan-b")); a.status != 422 || a.code() != "idempotency_key_reused" {
			t.Fatalf("another body under the key = %d %v, want 422 idempotency_key_reused", a.status, a.body)
		}
	})
	if got, want := len(pendingOf(t, m, phone)), 3; got != want {
		t.Errorf("invitations of the phone = %d, want %d (fixed, same, a)", got, want)
	}
}

// pendingOf lists the ids of a phone's invitations, through the API.
func pendingOf(t *testing.T, m *Main, phone string) []string {
	t.Helper()
	_, list := call(t, m, "GET", "/v1/links?phone="+strings.ReplaceAll(phone, "+", "%2B"), testAPIKey, nil, nil)
	var ids []string
	data, _ := list["data"].([]any)
	for _, d := range data {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	return ids
}

func TestInvitationsNameAnInstitutionAndMethodMonoOffers(t *testing.T) {
	m, _ := startPartnerGateway(t, nil, nil)
	const phone = "+2348071000102"
	cases := []struct {
		name        string
		institution string
		method      string
		status      int
		code        string
	}{
		{"an unknown institution is refused", "5f00000000000000000000ff", "", 422, "unknown_institution"},
		{"a method the institution does not offer is refused", "5f2d08be60b92e2888287702", "mobile_banking", 422, "auth_method_not_offered"},
		{"an offered institution and method are accepted", "5f2d08be60b92e2888287702", "internet_banking", 201, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"phone": phone, "reference": "inst-check", "institution": tc.institution}
			if tc.method != "" {
				body["auth_method"] = tc.method
			}
			a := postLink(t, m, "", body)
			if a.status != tc.status || a.code() != tc.code {
				t.Fatalf("create = %d %v, want %d %q", a.status, a.body, tc.status, tc.code)
			}
		})
	}
	if got := len(pendingOf(t, m, phone)); got != 1 {
		t.Errorf("invitations = %d, want only the valid one", got)
	}
}
