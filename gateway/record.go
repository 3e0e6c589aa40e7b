package gateway

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cutover/cutover/rules"
)

// recordState says where a secondary write stands.
type recordState string

const (
	// stateIntent: the primary is being sent the write; nobody knows yet
	// whether it will accept it.
	stateIntent recordState = "intent"
	// stateQueued: the primary accepted it; the secondary must get it.
	stateQueued recordState = "queued"
	// stateGaveUp: retries stopped; kept for inspection and re-drive.
	stateGaveUp recordState = "gave_up"
	// stateVerify: the primary's outcome is unknown (a timeout or reset after
	// the request was sent, the client leaving, the gateway stopping); the
	// secondary was not written and reconciliation must check the resource.
	stateVerify recordState = "verify"
)

// record is one secondary write as the outbox keeps it. Everything but the
// body is its JSON metadata; the body follows it raw.
type record struct {
	// ID is given when the write is first recorded and never changes; the
	// admin API names held writes by it.
	ID uint64 `json:"id"`
	// Order is the acceptance order: writes with one resource key reach the
	// secondary in Order. Zero until the primary accepted the write.
	Order    uint64      `json:"order,omitempty"`
	State    recordState `json:"state"`
	Key      string      `json:"key"`
	Route    string      `json:"route"`
	Override string      `json:"override,omitempty"`
	Side     rules.Side  `json:"side"` // the backend that must get it
	Method   string      `json:"method"`
	URL      string      `json:"url"`    // the primary's outbound URL; re-aimed at Side
	Target   string      `json:"target"` // the request URI as the client sent it
	Header   http.Header `json:"header"` // the primary's outbound header, idempotency key included
	// Recorded is when the write entered the gateway; First when it entered
	// the queue (the age that gives up); Held when it was given up or set
	// aside for verification.
	Recorded time.Time `json:"recorded"`
	First    time.Time `json:"first,omitzero"`
	Held     time.Time `json:"held,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	LastErr  string    `json:"last_error,omitempty"`
	// Reason says why a held write is held (a stats reason, or the
	// ambiguity of a verify record); Status is what the client got.
	Reason string `json:"reason,omitempty"`
	Status int    `json:"status,omitempty"`
	// NoBody marks a write whose body was too large to keep: it cannot be
	// replayed.
	NoBody bool `json:"no_body,omitempty"`
	// Redriven marks a write given up and then re-driven by an operator:
	// its failure and giving up are counted already, so its landing is a
	// retry that landed, not another first attempt.
	Redriven bool `json:"redriven,omitempty"`
	// Blocked marks a write queued behind an earlier write of its resource
	// that the secondary refused: it could not be sent at once, so it is
	// counted as a failed first attempt (once), and its landing later as a
	// retry that landed.
	Blocked bool `json:"blocked,omitempty"`
	// Origin is the place among its resource's writes of a re-driven
	// write: the one it had before it was held (a re-drive gives it a new
	// Order, at the back of the queue).
	Origin uint64 `json:"origin,omitempty"`
	// Superseded is when a later write of the same resource reached Side
	// after this write was held: replayed, it would put the older value
	// back over the newer one.
	Superseded time.Time `json:"superseded,omitzero"`

	body []byte
}

// place is where the write stands among its resource's writes: the order
// the primary accepted it in (kept across a re-drive), or, for a write never
// accepted (held to verify), the ID it was recorded with. IDs and orders
// come from one sequence, so places compare across both.
func (r *record) place() uint64 {
	switch {
	case r.Origin != 0:
		return r.Origin
	case r.Order != 0:
		return r.Order
	}
	return r.ID
}

// recordVersion leads every encoded record so the format can change.
const recordVersion = 1

// encode lays out a record as: version, uvarint length of the metadata,
// the metadata as JSON, the body. JSON keeps the file readable with bbolt's
// own tools and lets fields be added; the body stays raw (no base64).
func (r *record) encode() []byte {
	meta, err := json.Marshal(r)
	if err != nil {
		// Only unsupported types fail json.Marshal; record has none.
		panic(err)
	}
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(meta)+len(r.body))
	out = append(out, recordVersion)
	out = binary.AppendUvarint(out, uint64(len(meta)))
	out = append(out, meta...)
	return append(out, r.body...)
}

var errCorruptRecord = errors.New("corrupt queue record")

// decodeRecord reads an encoded record; withBody copies the body too (the
// input is bbolt memory, valid only inside its transaction).
func decodeRecord(b []byte, withBody bool) (*record, error) {
	if len(b) < 2 {
		return nil, errCorruptRecord
	}
	if b[0] != recordVersion {
		return nil, fmt.Errorf("%w: its format is version %d and this cutover reads version %d (was it written by another release?)", errCorruptRecord, b[0], recordVersion)
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || uint64(len(b)-1-w) < n {
		return nil, errCorruptRecord
	}
	meta := b[1+w : 1+w+int(n)]
	r := &record{}
	if err := json.Unmarshal(meta, r); err != nil {
		return nil, errors.Join(errCorruptRecord, err)
	}
	if withBody {
		if rest := b[1+w+int(n):]; len(rest) > 0 {
			r.body = append([]byte(nil), rest...)
		}
	}
	return r, nil
}

// u64 is the big-endian form of a sequence number: bbolt keeps keys in byte
// order, so this is numeric order.
func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// keyIndex is the key of a write in the per-resource index: the resource
// key (length-prefixed, so no key is a prefix of another) and the order.
func keyIndex(key string, order uint64) []byte {
	b := keyPrefix(key)
	return binary.BigEndian.AppendUint64(b, order)
}

func keyPrefix(key string) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(key)+8), uint64(len(key)))
	return append(b, key...)
}

// indexValue is what the per-resource index keeps of a write, so a restart
// rebuilds the queue's state without decoding any record: when it entered
// the queue, its route, the backend it goes to, its override (counted as
// that tenant's pending) and, for a re-driven write, its place
// (record.Origin).
func indexValue(r *record) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 28+len(r.Override)+len(r.Route)), uint64(r.First.UnixNano()))
	// A zero byte, then the side: a route's name never starts with one, so
	// values written before the side was kept still read as they were. The
	// side's high bits say what follows: the origin, then the override
	// (always, perhaps empty; values written before it was kept lack the
	// bit).
	side := byte(r.Side) | indexOverride
	if r.Origin != 0 {
		side |= indexOrigin
	}
	b = append(b, 0, side)
	if r.Origin != 0 {
		b = binary.BigEndian.AppendUint64(b, r.Origin)
	}
	b = binary.AppendUvarint(b, uint64(len(r.Override)))
	b = append(b, r.Override...)
	return append(b, r.Route...)
}

const (
	indexOrigin   = 0x80
	indexOverride = 0x40
)

// indexEntry is an index entry read back; side is -1 when the entry was
// written before the side was kept, origin 0 for a write never re-driven.
type indexEntry struct {
	key    string
	order  uint64
	first  time.Time
	route  string
	side   int
	origin uint64
	// override is the write's; hasOverride is false for an entry written
	// before the index kept it (recover reads it from the record then).
	override    string
	hasOverride bool
}

// place is the entry's record.place.
func (e indexEntry) place() uint64 {
	if e.origin != 0 {
		return e.origin
	}
	return e.order
}

func parseIndex(k, v []byte) (indexEntry, bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) != n+8 || len(v) < 8 {
		return indexEntry{}, false
	}
	e := indexEntry{key: string(k[w : w+int(n)]), order: binary.BigEndian.Uint64(k[w+int(n):]),
		first: time.Unix(0, int64(binary.BigEndian.Uint64(v))), side: -1}
	if len(v) < 10 || v[8] != 0 {
		e.route = string(v[8:]) // the earliest format: the route alone
		return e, true
	}
	flags, rest := v[9], v[10:]
	// A value cut short still names a queued write: it is delivered, its
	// backend unknown (recover reads its route and override from the
	// record), rather than skipped.
	cut := indexEntry{key: e.key, order: e.order, first: e.first, side: -1}
	e.side = int(flags &^ (indexOrigin | indexOverride))
	if flags&indexOrigin != 0 {
		if len(rest) < 8 {
			return cut, true
		}
		e.origin, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	if flags&indexOverride != 0 {
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n {
			return cut, true
		}
		e.override, e.hasOverride, rest = string(rest[w:w+int(n)]), true, rest[w+int(n):]
	}
	e.route = string(rest)
	return e, true
}
