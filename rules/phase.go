package rules

import "fmt"

// Phase is a step of the migration of one route (DESIGN.md, "The migration
// phases"). It decides which backend serves, what is compared and where
// writes go.
type Phase uint8

// The phases in migration order.
const (
	Prepare Phase = iota
	DualWrite
	Backfill
	ShadowRead
	Cutover
	Cleanup
)

var phaseNames = [...]string{"prepare", "dual-write", "backfill", "shadow-read", "cutover", "cleanup"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", p)
}

// ParsePhase reads a phase name as written in YAML.
func ParsePhase(s string) (Phase, bool) {
	for i, n := range phaseNames {
		if n == s {
			return Phase(i), true
		}
	}
	return 0, false
}

// Side names a backend in the user's words.
type Side uint8

// The two sides of a migration.
const (
	Old Side = iota
	New
)

func (s Side) String() string {
	if s == New {
		return "new"
	}
	return "old"
}

// Other returns the opposite side.
func (s Side) Other() Side { return 1 - s }

// Primary is the backend that serves the client in this phase.
func (p Phase) Primary() Side {
	if p >= Cutover {
		return New
	}
	return Old
}

// ComparesReads reports whether reads are also sent to the secondary and
// compared.
func (p Phase) ComparesReads() bool { return p == ShadowRead || p == Cutover }

// WritesSecondary reports whether writes are repeated on the secondary after
// the primary accepted them.
func (p Phase) WritesSecondary() bool { return p >= DualWrite && p <= Cutover }

// WriteMode says how a write reaches the secondary.
type WriteMode uint8

// The secondary write modes of `secondary_writes:`.
const (
	Async WriteMode = iota // answer the client, then write the secondary
	Sync                   // write the secondary before answering (the client still gets the primary's answer)
	Off                    // never write the secondary (e.g. old after cutover)
)

var modeNames = [...]string{"async", "sync", "off"}

func (m WriteMode) String() string { return modeNames[m] }

func parseMode(s string) (WriteMode, bool) {
	for i, n := range modeNames {
		if n == s {
			return WriteMode(i), true
		}
	}
	return 0, false
}
