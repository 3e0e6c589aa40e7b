package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
	bolt "go.etcd.io/bbolt"
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

// The index keeps each queued write's backend, override and a re-driven
// write's place; entries written before it did still read, with the
// backend unknown, no origin, or the override to be read from the record.
func TestTheIndexKeepsTheBackendTheOriginAndTheOverride(t *testing.T) {
	first := time.Unix(1700000000, 5)
	k := keyIndex("items|a", 42)
	want := indexEntry{key: "items|a", order: 42, first: first, route: "items", side: int(rules.New), hasOverride: true}
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New})); !ok || e != want || e.place() != 42 {
		t.Errorf("read back %+v %v, want %+v", e, ok, want)
	}
	want.origin = 7
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New, Origin: 7})); !ok || e != want || e.place() != 7 {
		t.Errorf("a re-driven write read back %+v %v, want %+v", e, ok, want)
	}
	want.override = "tenant-ä"
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New, Origin: 7, Override: "tenant-ä"})); !ok || e != want {
		t.Errorf("a re-driven write of an override read back %+v %v, want %+v", e, ok, want)
	}
	want.origin = 0
	if e, ok := parseIndex(k, indexValue(&record{First: first, Route: "items", Side: rules.New, Override: "tenant-ä"})); !ok || e != want {
		t.Errorf("a write of an override read back %+v %v, want %+v", e, ok, want)
	}
	old := binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano()))
	old = append(old, "items"...)
	if e, ok := parseIndex(k, old); !ok || e.route != "items" || e.side != -1 || e.hasOverride {
		t.Errorf("an entry of the earliest format: %+v, want items, -1", e)
	}
	sided := append(binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano())), 0, byte(rules.Old))
	sided = append(sided, "items"...)
	if e, ok := parseIndex(k, sided); !ok || e.route != "items" || e.side != int(rules.Old) || e.origin != 0 || e.hasOverride {
		t.Errorf("an entry with the backend and no origin: %+v", e)
	}
	origin := append(binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano())), 0, byte(rules.Old)|indexOrigin)
	origin = binary.BigEndian.AppendUint64(origin, 7)
	origin = append(origin, "items"...)
	if e, ok := parseIndex(k, origin); !ok || e.route != "items" || e.side != int(rules.Old) || e.origin != 7 || e.hasOverride {
		t.Errorf("an entry with the backend and the origin, no override: %+v", e)
	}
	// Cut short: still a queued write, to be delivered, its backend unknown.
	full := indexValue(&record{First: first, Route: "items", Side: rules.New, Origin: 7, Override: "tenant"})
	for _, n := range []int{12, 18, 20} {
		if e, ok := parseIndex(k, full[:n]); !ok || e.key != "items|a" || e.order != 42 || e.side != -1 {
			t.Errorf("an entry cut at %d bytes: %+v %v, want items|a, 42, backend unknown", n, e, ok)
		}
	}
}

// A queued write whose index entry was written before the index kept the
// override is counted for its override all the same: recover reads the
// override from its record.
func TestRecoverReadsTheOverrideOfAnOlderIndexEntry(t *testing.T) {
	dir := t.TempDir()
	o, err := openOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := time.Unix(1700000000, 0)
	for i, override := range []string{"acme", ""} {
		r := &record{ID: uint64(10 + i), Order: uint64(20 + i), Key: fmt.Sprint("items|", i), Route: "items", Method: "PUT",
			Target: fmt.Sprint("/items/", i), Side: rules.New, State: stateQueued, First: first, Override: override}
		if err := o.submitRecord(opAccept, r).wait(); err != nil {
			t.Fatal(err)
		}
		// As the index wrote it before it kept the override.
		v := append(binary.BigEndian.AppendUint64(nil, uint64(first.UnixNano())), 0, byte(rules.New))
		v = append(v, "items"...)
		err := o.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketByKey).Put(keyIndex(r.Key, r.Order), v) })
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	if _, err := o.recover(time.Now(), func(e indexEntry) { got[e.key] = e.override }, func(*record) {}); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"items|0": "acme", "items|1": ""}; !maps.Equal(got, want) {
		t.Errorf("recovered overrides %v, want %v", got, want)
	}
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
}
