package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ussdlink/ussdlink/link"
	"github.com/ussdlink/ussdlink/store/kit"
)

// querier is what a statement needs: the pool (a statement of its own) or
// the transaction it is part of.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// sessionColumns are the columns scanSession reads, in its order.
const sessionColumns = `s.id, s.phone, s.updated, s.purge, s.lapse, s.data, s.sealed, s.lapsed`

// holderColumns are sessionColumns without the sealed secrets, which a
// claim's policy is never shown: they are not even read.
const holderColumns = `s.id, s.phone, s.updated, s.purge, s.lapse, s.data, NULL::bytea, s.lapsed`

// scanSession reads a session row into its record, and returns its
// secrets still sealed (nil when it has none).
// Columns a query reads after sessionColumns are scanned into more.
func scanSession(row pgx.Row, more ...any) (*link.SessionRecord, []byte, error) {
	var (
		r      link.SessionRecord
		lapse  *time.Time
		sealed []byte
	)
	dest := make([]any, 0, 8+len(more)) // one allocation, more or not
	dest = append(dest, &r.ID, &r.Phone, &r.Updated, &r.Purge, &lapse, &r.Data, &sealed, &r.SecretsLapsed)
	if err := row.Scan(append(dest, more...)...); err != nil {
		return nil, nil, err
	}
	r.Updated, r.Purge, r.Lapse = r.Updated.UTC(), r.Purge.UTC(), fromNullTime(lapse)
	return &r, sealed, nil
}

// openSecrets opens a record's sealed secrets into it. Sealed under a key
// no longer held (lost, or rotated out of previous-seal-keys), they are
// lost, not an error: the session goes on without them, and whatever
// needed them is asked again.
func (db *DB) openSecrets(r *link.SessionRecord, sealed []byte) *link.SessionRecord {
	if len(sealed) == 0 {
		return r
	}
	plain, err := db.sealer.Open(sealed, []byte(r.ID))
	if err != nil {
		r.SecretsLost = true
		return r
	}
	r.Secrets = plain
	return r
}

// readSession reads one session, its secrets opened, or link.ErrNoSession.
func (db *DB) readSession(ctx context.Context, query string, arg string) (*link.SessionRecord, error) {
	r, sealed, err := scanSession(db.pool.QueryRow(ctx, query, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, link.ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	return db.openSecrets(r, sealed), nil
}

// Session returns the stored session, or link.ErrNoSession.
func (db *DB) Session(ctx context.Context, id string) (*link.SessionRecord, error) {
	if h := hopOf(ctx, id); h != nil {
		return db.readOnHop(ctx, h)
	}
	return db.readSession(ctx, `SELECT `+sessionColumns+` FROM sessions s WHERE s.id = $1`, id)
}

// hopSessionSQL is a hop's read of its session ($1): sessionColumns, then
// whether the session is its phone's latest already. The hop's commit
// then leaves the phone's row as it is (sessionRow.latest): one statement
// fewer on every hop but a session's first.
const hopSessionSQL = `SELECT ` + sessionColumns + `,
	EXISTS (SELECT 1 FROM phone_sessions p WHERE p.phone_key = s.phone_key AND p.session_id = s.id)
	FROM sessions s WHERE s.id = $1`

// hopSessionsSQL is hopSessionSQL for the sessions $1 at once, a row for
// each one stored: the reads of a lane's round trip in one statement,
// taken after their locks (a statement of its own: its snapshot comes
// after them). Under READ COMMITTED each statement's snapshot is its
// own, so each session is read as its lock's last holder committed it.
// Each id is looked up on its own, an index scan as the single read's
// (the LIMITs keep the planner from joining otherwise): with s.id =
// ANY($1) it took a bitmap scan, which never marks the index entries of
// dead versions dead as it passes, and for a score of ids it hashed the
// whole of phone_sessions to tell each one's latest.
const hopSessionsSQL = `SELECT ` + sessionColumns + `, p.latest IS NOT NULL
	FROM unnest($1::text[]) AS k (id)
	CROSS JOIN LATERAL (SELECT * FROM sessions WHERE id = k.id LIMIT 1) s
	LEFT JOIN LATERAL (SELECT true AS latest FROM phone_sessions p
		WHERE p.phone_key = s.phone_key AND p.session_id = s.id LIMIT 1) p ON true`

// Latest returns the most recently written session of a phone (with or
// without its "+"), or link.ErrNoSession.
func (db *DB) Latest(ctx context.Context, phone string) (*link.SessionRecord, error) {
	return db.readSession(ctx, latestSQL, link.PhoneKey(phone))
}

// latestSQL reads the latest session of phone $1.
const latestSQL = `SELECT ` + sessionColumns + ` FROM phone_sessions p JOIN sessions s ON s.id = p.session_id
	WHERE p.phone_key = $1`

// sessionRow is a session ready to be written: its secrets sealed, before
// the transaction, which stays short.
type sessionRow struct {
	id, phone, phoneKey string
	updated, purge      time.Time
	lapse               *time.Time
	data, sealed        []byte // sealed is nil without secrets
	// latest: the hop writing it read, under the session's lock, that the
	// session is its phone's latest already, and the phone is the same:
	// the phone's row is not written again. A hop of another session of
	// the phone that made itself the latest meanwhile (one phone, two
	// sessions at once) stays the latest.
	latest bool
}

// sessionRow seals r's secrets (with its id as additional data) and takes
// copies of what is written: the caller erases its plain secrets and may
// change the record once the commit returns.
func (db *DB) sessionRow(r *link.SessionRecord) sessionRow {
	w := sessionRow{id: r.ID, phone: r.Phone, phoneKey: link.PhoneKey(r.Phone), updated: r.Updated, purge: r.Purge,
		lapse: nullTime(r.Lapse), data: append([]byte{}, r.Data...)}
	if len(r.Secrets) > 0 {
		w.sealed = db.sealer.Seal(r.Secrets, []byte(r.ID))
	}
	return w
}

// queueSession adds to b the statements that write a session (its secrets
// no longer lapsed: they are as written) and make it its phone's latest;
// a phone whose latest session it already is keeps its row unwritten,
// and the statement is left out when the hop saw so (w.latest).
func queueSession(b *pgx.Batch, w sessionRow) {
	b.Queue(upsertSessionSQL, w.id, w.phone, w.phoneKey, w.updated, w.purge, w.lapse, w.data, w.sealed)
	if !w.latest {
		b.Queue(makeLatestSQL, w.phoneKey, w.id)
	}
}

// upsertSessionSQL writes session $1 (queueSession).
const upsertSessionSQL = `INSERT INTO sessions (id, phone, phone_key, updated, purge, lapse, data, sealed, lapsed)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false)` + sessionConflictSQL

// upsertSessionsSQL writes many sessions, as upsertSessionSQL writes one:
// each argument is one column, an array of a value for each session, in
// the order they are written.
const upsertSessionsSQL = `INSERT INTO sessions (id, phone, phone_key, updated, purge, lapse, data, sealed, lapsed)
	SELECT id, phone, phone_key, updated, purge, lapse, data, sealed, false
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[],
		$7::bytea[], $8::bytea[]) AS r (id, phone, phone_key, updated, purge, lapse, data, sealed)` + sessionConflictSQL

// sessionConflictSQL has a session already stored take every column
// written.
const sessionConflictSQL = `
	ON CONFLICT (id) DO UPDATE SET phone = EXCLUDED.phone, phone_key = EXCLUDED.phone_key, updated = EXCLUDED.updated,
		purge = EXCLUDED.purge, lapse = EXCLUDED.lapse, data = EXCLUDED.data, sealed = EXCLUDED.sealed, lapsed = false`

// makeLatestSQL makes session $2 the latest of phone $1 (queueSession).
const makeLatestSQL = `INSERT INTO phone_sessions (phone_key, session_id) VALUES ($1, $2)` + latestConflictSQL

// makeLatestManySQL is makeLatestSQL for many phones: $1 their keys, $2
// their sessions, each phone once.
const makeLatestManySQL = `INSERT INTO phone_sessions (phone_key, session_id)
	SELECT * FROM unnest($1::text[], $2::text[])` + latestConflictSQL

// latestConflictSQL has a phone's row already stored take the session
// written, leaving it unwritten when it holds that session already.
const latestConflictSQL = `
	ON CONFLICT (phone_key) DO UPDATE SET session_id = EXCLUDED.session_id
	WHERE phone_sessions.session_id <> EXCLUDED.session_id`

// sessionBatch is the sessions of many commits written as two
// statements, upsertSessionsSQL and makeLatestManySQL, instead of one or
// two each: a group commit's. A session added twice (two sessions of one
// phone in a group, one of them retiring the other) is written once, as
// the second left it, in the place of the first; a phone made the latest
// of two sessions is written once, for the second. Each is what writing
// them in turn would leave, which one statement could not do twice for
// one row.
type sessionBatch struct {
	ids, phones, keys []string
	updated, purge    []time.Time
	lapse             []*time.Time
	data, sealed      [][]byte
	// The phones made the latest of a session, and theirs.
	latestKeys, latestIDs []string
}

// add puts r in the batch.
func (sb *sessionBatch) add(r sessionRow) {
	if i := slices.Index(sb.ids, r.id); i >= 0 {
		sb.phones[i], sb.keys[i], sb.updated[i], sb.purge[i] = r.phone, r.phoneKey, r.updated, r.purge
		sb.lapse[i], sb.data[i], sb.sealed[i] = r.lapse, r.data, r.sealed
	} else {
		sb.ids, sb.phones, sb.keys = append(sb.ids, r.id), append(sb.phones, r.phone), append(sb.keys, r.phoneKey)
		sb.updated, sb.purge = append(sb.updated, r.updated), append(sb.purge, r.purge)
		sb.lapse, sb.data, sb.sealed = append(sb.lapse, r.lapse), append(sb.data, r.data), append(sb.sealed, r.sealed)
	}
	if r.latest {
		return
	}
	if i := slices.Index(sb.latestKeys, r.phoneKey); i >= 0 {
		sb.latestIDs[i] = r.id
	} else {
		sb.latestKeys, sb.latestIDs = append(sb.latestKeys, r.phoneKey), append(sb.latestIDs, r.id)
	}
}

// queue adds the batch's statements to b, each only when it writes
// something, and returns how many it added.
func (sb *sessionBatch) queue(b *pgx.Batch) int {
	n := b.Len()
	if len(sb.ids) > 0 {
		b.Queue(upsertSessionsSQL, sb.ids, sb.phones, sb.keys, sb.updated, sb.purge, sb.lapse, sb.data, sb.sealed)
	}
	if len(sb.latestKeys) > 0 {
		b.Queue(makeLatestManySQL, sb.latestKeys, sb.latestIDs)
	}
	return b.Len() - n
}

// Commit writes everything one hop decided in one transaction, durable
// before it returns: the session and the one it retired (each its phone's
// latest, in that order), the partner events and texts, the login failure
// and the released reservations, the link (see decideLink: a new one may
// take the account's remembered update, told after the link's own events),
// the invitation, moved on only if it is still pending (Mono's webhook
// may have completed it first), with its events, the counts of the
// session's funnel entry (one row of funnel_increments, for Sweep to fold
// into the counters), and the language
// the session's phone chose, when it chose one (one statement, in the
// batch of writes: no round trip of its own). A language that is not a
// code (kit.Language) fails the commit before anything is sent.
//
// Across instances: a login failure is recorded under its phone's lock,
// so a reservation counts it before or after, never beside it; a link is
// written under its account's lock, which Mono's webhook takes too, so
// an update Mono sends while the link commits is either taken by the link
// or applied to it; the invitation's row is locked while it is decided.
//
// The statements go in batches: the locks and the reads the decisions
// need in one, everything written in another. Under a hop's lock
// (LockSession) a change that needs no read joins its lane's group
// commit, one round trip with the session's unlock; one with a link or
// an invitation is two round trips beside the lane, then the unlock on
// it. Otherwise the transaction's BEGIN and COMMIT are round trips of
// their own.
func (db *DB) Commit(ctx context.Context, c link.Change) error {
	if c.Session == nil {
		return errors.New("commit: a change without its session")
	}
	if err := kit.Language(c.Language); err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	w, err := db.newCommitWrite(c)
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	if h := hopOf(ctx, c.Session.ID); h != nil {
		err = db.commitOnHop(ctx, h, w)
	} else {
		err = db.inTx(ctx, func(tx pgx.Tx) error { return db.commitInTx(ctx, tx, w) })
	}
	if err != nil {
		return fmt.Errorf("commit session %s: %w", c.Session.ID, err)
	}
	return nil
}

// commitWrite is a change made ready for its statements: sessions sealed,
// events and texts encoded.
type commitWrite struct {
	c                       link.Change
	phone                   string // the session's phone key
	recs                    []sessionRow
	msgs, inviteMsgs, texts []link.Message
	funnel                  []any // the funnel entry's counts as stageFunnelSQL's arguments; nil: none
}

// newCommitWrite prepares c.
func (db *DB) newCommitWrite(c link.Change) (*commitWrite, error) {
	w := &commitWrite{c: c, phone: link.PhoneKey(c.Session.Phone)}
	for _, r := range []*link.SessionRecord{c.Retired, c.Session} {
		if r != nil {
			w.recs = append(w.recs, db.sessionRow(r))
		}
	}
	var err error
	if w.msgs, err = kit.EventMessages(c.Events); err != nil {
		return nil, err
	}
	if w.inviteMsgs, err = kit.EventMessages(c.InviteEvents); err != nil {
		return nil, err
	}
	if w.texts, err = kit.TextMessages(c.Texts); err != nil {
		return nil, err
	}
	// Encoded once, not at each attempt: they do not change between them.
	if counts := kit.FunnelCounts(c.Funnel, c.RetiredFunnel); len(counts) > 0 {
		if w.funnel, err = funnelArrays(counts); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// decided reports whether the change reads anything before it writes: a
// link (which takes a remembered update) or an invitation (decided from
// its stored status).
func (w *commitWrite) decided() bool { return w.c.Link != nil || w.c.Invite != nil }

// common reports whether the change can join a lane's group commit: it
// decides nothing from what is stored, so that it waits on no other
// transaction between two round trips.
func (w *commitWrite) common() bool { return !w.decided() }

// queueLocks adds the change's transaction locks to b, in one order:
// phone, then account.
func (w *commitWrite) queueLocks(b *pgx.Batch) { queueXactLocks(b, w.locks()) }

// locks are the change's transaction locks but its messages' keys, in
// the order taken: its phone's when it records a login failure, then the
// account's it links.
func (w *commitWrite) locks() []string {
	var keys []string
	if w.c.LoginFailure {
		keys = append(keys, lockLogin+w.phone)
	}
	if w.c.Link != nil {
		keys = append(keys, lockAccount+w.c.Link.AccountID)
	}
	return keys
}

// queueReads adds to b, after the locks, what the decisions read: the
// account's stored link and remembered update, the invitation, each row
// locked until the transaction ends.
func (db *DB) queueReads(b *pgx.Batch, w *commitWrite) {
	if l := w.c.Link; l != nil {
		b.Queue(`SELECT `+linkColumns+` FROM links WHERE account_id = $1 FOR UPDATE`, l.AccountID)
		if db.linkUpdates != nil {
			b.Queue(latestUpdateSQL, l.AccountID)
		}
	}
	if w.c.Invite != nil {
		b.Queue(`SELECT `+inviteColumns+` FROM invitations i WHERE i.id = $1 FOR UPDATE`, w.c.Invite.ID)
	}
}

// readDecisions reads the results of queueLocks and queueReads, in their
// order, and decides the link and the invitation.
func (db *DB) readDecisions(br pgx.BatchResults, w *commitWrite) (decisions, error) {
	var d decisions
	for range lockStatements(w.locks()) {
		if _, err := br.Exec(); err != nil {
			return d, fmt.Errorf("lock: %w", err)
		}
	}
	if l := w.c.Link; l != nil {
		stored, err := scanLink(br.QueryRow())
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return d, fmt.Errorf("read link %s: %w", l.AccountID, err)
		}
		var u *link.MonoUpdate
		if db.linkUpdates != nil {
			if u, err = scanUpdate(br.QueryRow(), l.AccountID); err != nil {
				return d, err
			}
		}
		if d.link, err = db.decideLink(l, stored, u); err != nil {
			return d, err
		}
	}
	if w.c.Invite != nil {
		held, err := scanInvite(br.QueryRow())
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return d, fmt.Errorf("read invite: %w", err)
		}
		d.invite = held
	}
	return d, nil
}

// decisions is what a commit decided from what is stored.
type decisions struct {
	link   linkWrite
	invite *link.Invite // the stored invitation, nil when there is none
}

// queueOwn adds to b what the change writes whatever is stored: its
// sessions, language, messages, login failure, released reservations and
// funnel counts. Its messages' key locks are the caller's to take first:
// queueWrites takes a change's in one statement, a group commit all of
// its changes' (groupKeys).
func (w *commitWrite) queueOwn(b *pgx.Batch) {
	for _, r := range w.recs {
		queueSession(b, r)
	}
	w.queueBeside(b)
}

// queueBeside adds to b what queueOwn does but the sessions: those of a
// group commit's changes are written together (sessionBatch).
func (w *commitWrite) queueBeside(b *pgx.Batch) {
	if w.c.Language != "" {
		queueLanguage(b, w.phone, w.c.Language, w.c.Session.Updated)
	}
	queueMessageRows(b, queueWebhooks, w.msgs)
	queueMessageRows(b, queueTexts, w.texts)
	if w.c.LoginFailure {
		queueFailure(b, w.phone, w.c.Session.Updated)
	}
	queueRelease(b, w.c.Release)
	if w.funnel != nil {
		b.Queue(stageFunnelSQL, w.funnel...)
	}
}

// queueWrites adds to b everything the change writes, as decided: first
// the locks of every message's key, in one statement, in the order a
// group commit takes them (webhooks' then texts', each sorted).
func (w *commitWrite) queueWrites(b *pgx.Batch, d decisions) error {
	// The invitation moves on only from pending: if Mono's webhook
	// completed it first, neither it nor its events are written again.
	invite := w.c.Invite != nil && (d.invite == nil || d.invite.Status == link.StatusPending)
	webhooks := w.msgs
	if invite {
		webhooks = append(slices.Clip(webhooks), w.inviteMsgs...)
	}
	var linkMsgs []link.Message
	if d.link.link != nil {
		linkMsgs = kit.After(d.link.events, w.msgs, w.inviteMsgs) // told after the link
		webhooks = append(slices.Clip(webhooks), linkMsgs...)
	}
	queueXactLocks(b, append(messageLocks(queueWebhooks, webhooks), messageLocks(queueTexts, w.texts)...))
	w.queueOwn(b)
	if invite {
		if err := queueInvite(b, kit.WithLinkStatus(kit.KeepClaim(d.invite, w.c.Invite), d.link.link)); err != nil {
			return err
		}
		queueMessageRows(b, queueWebhooks, w.inviteMsgs)
	}
	if d.link.link != nil {
		queueLink(b, d.link.link)
		queueMessageRows(b, queueWebhooks, linkMsgs)
	}
	return nil
}

// commitInTx runs the change within tx: its locks and reads, when it has
// any, then its writes.
func (db *DB) commitInTx(ctx context.Context, tx pgx.Tx, w *commitWrite) error {
	var d decisions
	if w.decided() || w.c.LoginFailure {
		b := &pgx.Batch{}
		w.queueLocks(b)
		db.queueReads(b, w)
		br := tx.SendBatch(ctx, b)
		var err error
		d, err = db.readDecisions(br, w)
		if err = errors.Join(err, br.Close()); err != nil {
			return err
		}
	}
	b := &pgx.Batch{}
	if err := w.queueWrites(b, d); err != nil {
		return err
	}
	return tx.SendBatch(ctx, b).Close()
}

// nullTime is t for a column where NULL stands for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNullTime is the time a nullable column holds, in UTC; zero for NULL.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
