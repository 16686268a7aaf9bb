// Package postgres is the store on PostgreSQL, for running many gateways
// as one: every instance shares the database, and everything one instance
// writes is what the next hop on another reads. It implements the same
// contract as the embedded bbolt store (store/storetest), in the domain
// types of package link, and seals what users type exactly as it does.
//
// The schema is created and migrated by versioned migrations embedded in
// the binary (migrations/*.sql, applied with goose under an advisory lock,
// so that instances starting together migrate once). Transactions are
// short and never span a call to Mono.
//
// Statements go in batches, one round trip each. A hop holds its session's
// advisory lock on a connection of its own (Locks.LockSession, hop.go):
// the lock goes out with the session's first read, and the commit's
// BEGIN, statements, COMMIT and unlock go in one batch, so a common hop
// costs the database two round trips.
package postgres
