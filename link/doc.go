// Package link holds the gateway's domain: the values every other package
// passes around — links, invitations, partner events, text messages, a
// hop's change, stored session records, queued messages — with their
// statuses and names. It imports nothing of ours, so every package can
// depend on it for data without depending on the conversation or the store.
package link
