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

// The index keeps each queued write's backend; an entry written before it
// did still reads, with the backend unknown.
func TestTheIndexKeepsTheBackend(t *testing.T) {
	first := time.Unix(1700000000, 5)
	k := keyIndex("items|a", 42)
	key, order, at, route, side, ok := parseIndex(k, indexValue(first, "items", rules.New))
	if !ok || key != "items|a" || order != 42 || !at.Equal(first) || route != "items" || side != int(rules.New) {
		t.Errorf("read back %q %d %v %q %d %v", key, order, at, route, side, ok)
	}
	old := binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano()))
	old = append(old, "items"...)
	if _, _, _, route, side, ok := parseIndex(k, old); !ok || route != "items" || side != -1 {
		t.Errorf("an entry of the earlier format: %q %d %v, want items, -1", route, side, ok)
	}
}
