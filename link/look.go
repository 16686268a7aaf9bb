package link

// FirstLook is what a new session's first screen reads of its phone: its
// refused logins and unreleased reservations since the lockout's start,
// the language it chose, its latest session and its newest invitation
// usable at the look's time. A store that can reads it in one go (a
// remote one pays a round trip a read); each is what the read of its own
// would give.
type FirstLook struct {
	Failures int
	Language string         // "" when the phone never chose
	Latest   *SessionRecord // nil when the phone has none; its secrets opened
	Invite   *Invite        // nil when none is usable
}
