package gateway

import (
	"errors"
	"strings"
	"testing"
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
