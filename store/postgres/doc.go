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
// Statements go in batches, one round trip each. A hop holds its
// session's advisory lock on its session's lane (lanes.go), a connection
// many hops share: the lock goes out with the session's first read, and
// a common commit's statements and the unlock in one batch, so a common
// hop costs the database two round trips; the commits waiting on a lane
// go in one transaction. A commit that decides from what is stored (a
// link, an invitation) runs beside the lane, fenced (fenceKey). A
// session another holder has is waited for on a connection of the hop's
// own (hop.go).
package postgres
