package gateway

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
)

// A record in another format version says which, so the log tells an
// operator that another release wrote it; it is still a corrupt record to
// every caller.
func TestARecordOfAnotherVersionSaysWhich(t *testing.T) {
	b := (&record{ID: 1, Route: "items"}).encode()
	if r, err := decodeRecord(b, true); err != nil || r.Route != "items" {
		t.Fatalf("decode: %+v, %v", r, err)
	}
	b[0] = recordVersion + 1
	_, err := decodeRecord(b, true)
	if !errors.Is(err, errCorruptRecord) || !strings.Contains(err.Error(), "version 2 and this cutover reads version 1") {
		t.Errorf("a record of the next version: %v", err)
	}
}

// The index keeps each queued write's backend and a re-driven write's
// place; entries written before it did still read, with the backend
// unknown or no origin.
func TestTheIndexKeepsTheBackendAndTheOrigin(t *testing.T) {
	first := time.Unix(1700000000, 5)
	k := keyIndex("items|a", 42)
	want := indexEntry{key: "items|a", order: 42, first: first, route: "items", side: int(rules.New)}
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New})); !ok || e != want || e.place() != 42 {
		t.Errorf("read back %+v %v, want %+v", e, ok, want)
	}
	want.origin = 7
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New, Origin: 7})); !ok || e != want || e.place() != 7 {
		t.Errorf("a re-driven write read back %+v %v, want %+v", e, ok, want)
	}
	old := binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano()))
	old = append(old, "items"...)
	if e, ok := parseIndex(k, old); !ok || e.route != "items" || e.side != -1 {
		t.Errorf("an entry of the earliest format: %+v, want items, -1", e)
	}
	sided := append(binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano())), 0, byte(rules.Old))
	sided = append(sided, "items"...)
	if e, ok := parseIndex(k, sided); !ok || e.route != "items" || e.side != int(rules.Old) || e.origin != 0 {
		t.Errorf("an entry with the backend and no origin: %+v", e)
	}
}
