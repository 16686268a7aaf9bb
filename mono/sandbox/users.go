package sandbox

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ussdlink/ussdlink/mono"
)

// Values every sandbox bank accepts.
const (
	// Password is the password of every test user except user_star.
	Password = "pass_good"
	// StarPassword is user_star's password: it holds characters a USSD
	// keypad makes awkward.
	StarPassword = "p*ss #good"
	// PIN is what any form field named "pin" (token or mobile app PIN) must be.
	PIN = "1234"
	// OTP is the one-time password the OTP users must enter.
	OTP = "123456"
	// Answer is the answer to user_question's security question, compared
	// case-insensitively.
	Answer = "lagos"
)

// User is a sandbox test login: type Username into an institution's first
// field and Password into its password field to walk Flow.
type User struct {
	Username string // the value of the form's first input field
	Password string // the value of the form's password field
	Flow     string // short name of what the bank does after login
	Note     string // one line for humans: what the flow exercises
}

// stepKind is something the bank asks for after a login.
type stepKind int

const (
	stepOTP     stepKind = iota // 102: an OTP form
	stepAnswer                  // 102: a security question
	stepSelect                  // 101: choose one of several accounts
	stepRelogin                 // 102: the bank's login form again, during a reauthorisation
)

// accountKind is the type and currency of one account a test user holds.
type accountKind struct {
	typ, currency string
}

// testUser is a User with the behaviour behind it.
type testUser struct {
	User
	holder   string        // name on the accounts
	steps    []stepKind    // asked for in order after a good login
	accounts []accountKind // what the user holds at every bank
	slow     bool          // login takes Options.SlowDelay
	locked   bool          // every login is refused
	reauth   bool          // a reauthorisation needs an OTP
	relogin  bool          // a reauthorisation needs the bank login again
}

// testUsers builds the sandbox's users; slow is the slow user's delay, for
// its note.
func testUsers(slow time.Duration) []testUser {
	savings := accountKind{"SAVINGS_ACCOUNT", "NGN"}
	current := accountKind{"CURRENT_ACCOUNT", "NGN"}
	domUSD := accountKind{"DOMICILIARY_ACCOUNT", "USD"}
	oneCurr := []accountKind{current}
	oneSav := []accountKind{savings}
	threeAcc := []accountKind{savings, current, domUSD}
	twoAcc := []accountKind{savings, current}
	return []testUser{
		{User: User{"user_good", Password, "linked", "Links one current account at once (99)."},
			holder: "ADAEZE OKAFOR", accounts: oneCurr},
		{User: User{"user_multi", Password, "select-account", "Offers 3 accounts (NGN savings, NGN current, USD domiciliary) to choose from (101)."},
			holder: "TUNDE BAKARE", steps: []stepKind{stepSelect}, accounts: threeAcc},
		{User: User{"user_question", Password, "security-question", `Asks "Which city were you born in?" (102); the answer is "lagos".`},
			holder: "NGOZI EZE", steps: []stepKind{stepAnswer}, accounts: oneSav},
		{User: User{"user_otp", Password, "otp", `Asks for an OTP (102); the OTP is "123456". Reauthorisation asks for it again.`},
			holder: "EMEKA OBI", steps: []stepKind{stepOTP}, accounts: oneSav, reauth: true},
		{User: User{"user_mfa", Password, "otp-then-select", "Asks for the OTP 123456 (102), then offers 2 accounts (101). Reauthorisation asks for the OTP."},
			holder: "FATIMA BELLO", steps: []stepKind{stepOTP, stepSelect}, accounts: twoAcc, reauth: true},
		{User: User{"user_slow", Password, "slow", fmt.Sprintf("Links one account after a %s login, longer than a USSD hop.", slow)},
			holder: "SEGUN ADEYEMI", accounts: oneCurr, slow: true},
		{User: User{"user_star", StarPassword, "special-password", "Links at once; the password holds *, # and a space."},
			holder: "AISHA MUSA", accounts: oneSav},
		{User: User{"user_locked", Password, "locked", "Always refused: the bank says the account is locked."},
			holder: "IBRAHIM SANI", locked: true},
		{User: User{"user_relogin", Password, "relogin", "Links at once (99); reauthorisation asks for the bank login again (102 with the login form), as after a changed password."},
			holder: "CHIDI NWOSU", accounts: oneCurr, relogin: true},
	}
}

// accountsAt lists what u holds at the institution: the same numbers every
// time, different at each bank.
func (u *testUser) accountsAt(institution string) []mono.Account {
	out := make([]mono.Account, len(u.accounts))
	for i, k := range u.accounts {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s|%s|%d", institution, u.Username, i))
		number := make([]byte, 10)
		for j := range number {
			number[j] = '0' + sum[j]%10
		}
		kobo := binary.BigEndian.Uint32(sum[10:14]) % 250_000_000
		out[i] = mono.Account{
			AccountNumber: string(number),
			Name:          u.holder,
			Type:          k.typ,
			Currency:      k.currency,
			Status:        "active",
			Balance:       float64(kobo) / 100,
		}
	}
	return out
}
