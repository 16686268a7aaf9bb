// Package guard is the HTTP guards every edge route uses: callback
// authentication by token and IP allow-list, the client address behind a
// trusted proxy, per-key rate limits.
package guard
