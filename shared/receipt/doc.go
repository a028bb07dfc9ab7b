// Package receipt builds, encodes, parses and verifies the hash-chained
// receipts of governor decisions.
//
// Every event applied to a governor instance yields exactly one Receipt.
// Receipts of one instance form a chain: seq runs 1, 2, 3 … without gaps,
// and prev_hash is the hash of the receipt before (ZeroHash for seq 1). The
// hash is the lowercase hex SHA-256 of the receipt's RFC 8785 (JCS) canonical
// JSON without the "hash" member, so anyone holding the published JSON can
// recompute it with any JCS implementation.
//
// # Wire format
//
// A receipt is one JSON object with exactly these members; every scalar is a
// string or an integer, never a float or null, and "actions" is always an
// array (possibly empty):
//
//	tenant_id, domain, subject, seq, execution_id, event_source, event_type,
//	correlation_id, from_state, to_state, outcome, reason, actions,
//	data_digest, decided_at, prev_hash, hash
//
// Each action is {"kind", "type", "domain", "subject", "id"}, all strings.
// JSON (and MarshalJSON) writes the canonical form including "hash"; Parse
// (and UnmarshalJSON) accepts any whitespace and member order but refuses
// unknown or missing members, duplicate members, nulls, floats, integers
// outside 1…2^53−1, lone surrogate escapes and invalid UTF-8.
//
// # Canonical JSON
//
// The encoder is specialised for the receipt: member names are fixed ASCII
// and written in their sorted order, seq is written as a decimal integer,
// and strings are escaped as ECMAScript JSON.stringify does: \" \\ \b \f \n
// \r \t, other control characters below U+0020 as \u00xx (lowercase hex),
// everything else, including non-ASCII, U+2028, '<', '>', '&' and '/',
// verbatim. JCS requires valid Unicode, so each byte of a string that is not
// part of valid UTF-8 is written as U+FFFD, exactly as encoding/json does;
// New applies the same replacement to the fields it copies, so a receipt
// built by New is equal to its own parsed JSON. Integers above 2^53−1 cannot
// be represented exactly by JCS; Parse refuses them and Verify reports them.
//
// # Times
//
// decided_at is UTC in RFC 3339 with exactly nine fractional digits
// (TimeFormat), e.g. "2026-11-03T08:15:00.123456789Z". The fixed width keeps
// nanosecond precision and makes the strings sort in time order, so stores
// can range-query them as text. The verifier accepts any RFC 3339 UTC time
// ending in "Z".
//
// # Action ids
//
// Emitted events and actuator actions carry deterministic ids so that
// re-publishing an outbox entry is idempotent downstream. The receipt hash
// covers those ids, so an id cannot be derived from the hash of the receipt
// that lists it (the contract says "derived from the receipt hash").
// Instead ActionID derives it from the receipt's chain position, which the
// hash also covers, which includes the previous receipt's hash, and which is
// fixed before the hash is computed: the first 16 bytes, in lowercase hex (32 characters), of the
// SHA-256 of
//
//	field("autonomics.receipt.action.v1") field(tenant_id) field(domain)
//	field(subject) field(decimal seq) field(prev_hash) field(execution_id)
//	field(decimal index)
//
// where field(s) is the uvarint length of s followed by the bytes of s. The
// position (tenant, domain, subject, seq, prev_hash) is unique for a
// committed chain, and execution_id distinguishes ids of decisions that lost
// a concurrent race and were never committed.
//
// # Verification
//
// Verify checks a whole chain; a Verifier checks one instance's chain
// receipt by receipt, so callers can stream pages from storage. For every
// receipt, in this order, it checks the hash (hash_mismatch), the formats of
// seq, outcome, decided_at, data_digest and action kinds (malformed), that
// the receipt belongs to the same instance as the first (wrong_instance),
// that seq follows the previous one (bad_sequence), that prev_hash equals the
// previous hash or ZeroHash for seq 1 (broken_link), and that every action
// id is ActionID of its index (bad_action_id). The first failure is reported
// as a *ChainError naming the receipt's index and seq.
package receipt
