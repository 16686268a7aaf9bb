package mono

import "testing"

func TestKindTellsTheUsersFaultFromTheGatewaysAndTheBanks(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want Kind
	}{
		{"refused password", &Error{Status: 400, ResponseCode: 400, Message: "Invalid login credentials"}, KindRejected},
		{"refused step in a 200", &Error{Status: 200, ResponseCode: 400, Message: "Wrong OTP"}, KindRejected},
		{"app missing", &Error{Status: 400, Message: "app is required"}, KindMisconfigured},
		{"unknown app", &Error{Status: 400, Message: "Invalid app id supplied"}, KindMisconfigured},
		{"bad key", &Error{Status: 401, Message: "Unauthorized"}, KindUnauthorized},
		{"no add-on", &Error{Status: 403, Message: "Forbidden"}, KindUnauthorized},
		{"locked account", &Error{Status: 400, ResponseCode: 400, Message: "Your account has been locked by the bank"}, KindAccountLocked},
		{"disabled account", &Error{Status: 200, ResponseCode: 400, Message: "Internet banking is disabled for this account"}, KindAccountLocked},
		{"lost answer", &Error{Status: 502, Message: "Bad Gateway", Unknown: true}, KindUnknown},
		{"5xx of a GET", &Error{Status: 502, Message: "Bad Gateway"}, KindTemporary},
		{"expired session", &Error{Status: 404, Message: "session not found"}, KindNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Kind(); got != tt.want {
				t.Errorf("Kind() = %v, want %v", got, tt.want)
			}
		})
	}
}
