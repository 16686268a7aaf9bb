// Package menus is the conversation: the state machine behind the USSD
// screens, one per phone session, rendering each screen within the
// handset's budget, flattening Mono's forms into one prompt per field, and
// driving the login through the Mono interface it declares. It knows
// nothing of HTTP, aggregator formats or the store's backend: it declares
// the Store it needs and speaks the domain types of package link.
//
// It has two halves. The engine runs hops safely; the journey decides what
// a hop means.
//
// The engine:
//   - engine.go — Engine, its Config, the Store and Mono it needs; Handle,
//     Close and Cancel, one session at a time under its lock.
//   - hop.go — a hop checked and opened, its input worked out (deep-dial
//     extensions).
//   - transcript.go — repeated callbacks recognised by a keyed transcript
//     hash.
//   - jobs.go — Mono work that outlives the hop budget: detached, settled
//     in the background, drained at shutdown.
//   - record.go — sessions encoded for the store (MessagePack from the
//     generated *_msgp.go, JSON still read), their typed values as the
//     secrets it seals.
//
// The journey:
//   - machine.go — states, events, the one transition table, typed event
//     arguments; the machine is the only place a state is set.
//   - turn.go — one hop's work on one session: built by newTurn, moved by
//     fire, committed as one link.Change.
//   - handlers.go — what an input does in each state.
//   - work.go, outcome.go — the Mono work a turn sends and what its answer
//     (or its loss) does.
//   - resume.go, invite.go — continuing a dropped session; following a
//     partner's invitation, claimed by one session at a time.
//   - events.go — the partner events and texts a turn queues.
//   - render.go, texts.go, form.go — the screen for each state, its words,
//     Mono's forms flattened into prompts (package screen fits them to the
//     handset).
//   - banks.go, session.go — the institution list (cached by package
//     catalog) and the stored state of a conversation.
package menus
