// Package kit is what every store backend shares, so that bbolt and
// PostgreSQL write the same bytes by the same rules: how partner events and
// texts become queued messages (body, ordering key), how a link's status is
// carried to the invitations that hold it, how a claim survives a rewrite,
// how invitation codes are drawn, which increments of the drop-off
// funnel's counters a commit or a sweep adds, and which language codes a
// phone's choice may hold.
package kit
