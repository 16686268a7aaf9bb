package menus

import (
	"fmt"
	"time"
)

// Every sentence a user reads lives here, so that wording is reviewed in one
// place and stays within GSM-7.
const (
	textChooseBank         = "Link your bank. Choose bank or type its name:"
	textMoreBanks          = "Choose bank:"
	textChooseMethod       = "How do you log in?"
	textChooseAccount      = "Choose the account to link:"
	textInvalidChoice      = "Invalid choice. Try again."
	textEmpty              = "Please type a value."
	textUnreadable         = "Unreadable characters. Try again."
	textDigitsOnly         = "Digits only, please."
	textLoginFailed        = "Login failed. Check details and retry."
	textAnswerRejected     = "Not accepted by your bank. Try again."
	textGoodbye            = "Goodbye. Nothing was linked."
	textTooManyTries       = "Too many failed attempts. Nothing was linked. Please try again later."
	textUnavailable        = "Service unavailable. Nothing was linked. Please try again later."
	textFailed             = "Sorry, your bank could not be reached. Nothing was linked. Please try again later."
	textNoBanks            = "Sorry, no banks are available right now. Please try again later."
	textSessionOver        = "This session has ended. Dial again to start over."
	textExpired            = "Your session expired. Dial again to start over."
	textBankUnavailable    = "This bank is not available right now. Please choose another."
	textWaiting            = "Your bank is still answering. This can take a moment."
	textCheckAgain         = "Check again"
	textNoAnswer           = "Your bank did not answer. Please try again."
	textNoAnswerRetype     = "Your bank did not answer. Please type your details again."
	textNewCode            = "Your bank sent you a new code."
	textStartedAgain       = "Sorry, we had to start again."
	textBankLocked         = "Your bank has locked or disabled this account. Please contact your bank. Nothing was linked."
	textRetype             = "Please type your details again."
	textBankSessionExpired = "Your bank session timed out. Please log in again."
	textLocked             = "For your safety, bank logins from this phone are paused after several failed attempts. Please try again later."
	textContinue           = "Continue"
	textBusy               = "One moment, please. Try again."
	textStartOver          = "Start over"
)

// textTooLong says how long a field may be.
func textTooLong(max int) string { return fmt.Sprintf("At most %d characters, please.", max) }

// What was typed is never repeated on a screen: a password typed into the
// wrong screen must not come back in a reply, a stored screen or a text.
const (
	textNoMatch  = "No bank name starts with that. Try again."
	textMatching = "Banks matching your search:"
)

// textResume offers to continue a link a dropped session left unfinished.
func textResume(bank string) string {
	return fmt.Sprintf("You were linking your %s account.", bank)
}

// textHandover sends an SMS conversation to USSD for the credentials.
func textHandover(dial string, ttl time.Duration) string {
	return fmt.Sprintf("To log in safely, dial %s from this phone within %d minutes. Never send passwords by text.", dial, int(ttl.Minutes()))
}

// textHandoverDial sends a text conversation to USSD to carry on there.
func textHandoverDial(dial string) string {
	return fmt.Sprintf("To carry on safely, dial %s from this phone. Never send passwords or codes by text.", dial)
}

// textReauthorised confirms a reauthorisation.
func textReauthorised(bank string) string {
	if bank == "" {
		return "Done! Your bank account is re-authorised. Thank you."
	}
	return fmt.Sprintf("Done! Your %s account is re-authorised. Thank you.", bank)
}

// textLinked is the success screen: the bank and the masked account number.
func textLinked(bank, masked string) string {
	if masked == "" {
		return fmt.Sprintf("Done! Your %s account is linked. Thank you.", bank)
	}
	return fmt.Sprintf("Done! %s account %s is linked. Thank you.", bank, masked)
}
