package stats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/stats"
)

func TestRestartKeepsTheEvidence(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := open(t, dir, c)
	for range 900 {
		s.Read(match("user"))
	}
	for i := range 100 {
		s.Read(priceMismatch("user", i))
	}
	ov := match("user")
	ov.Override = "acme"
	s.Read(ov)
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK})
	s.SetQueue("user", stats.QueueState{Pending: 2, Oldest: c.Now()})
	before := one(t, s, userRoute)
	evBefore, _ := s.Evidence(userRoute, stats.EvidenceQuery{Fields: 10, Diffs: true, History: time.Hour})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	c.Add(5 * time.Minute)
	s2 := open(t, dir, c)
	after := one(t, s2, userRoute)
	if mustJSON(t, after.Reads.Window) != mustJSON(t, before.Reads.Window) {
		t.Errorf("reads after restart = %+v, before %+v", after.Reads.Window, before.Reads.Window)
	}
	if after.Writes.SecondarySucceeded != 1 || after.Writes.PendingRetries != 2 {
		t.Errorf("writes after restart = %+v", after.Writes)
	}
	if after.Latency.Old.P99Ms != before.Latency.Old.P99Ms || after.Latency.Old.Count != before.Latency.Old.Count {
		t.Errorf("latency after restart = %+v, before %+v", after.Latency, before.Latency)
	}
	if after.Ready.Status != before.Ready.Status || len(after.Overrides) != 1 || after.Overrides[0].Reads.Compared != 1 {
		t.Errorf("after restart: ready %s overrides %+v", after.Ready.Status, after.Overrides)
	}
	// The minute buckets survived: the 1 h window still has them, the 5 min
	// window no longer does.
	if w := after.Reads.Windows["1h"]; w.Compared != 1001 {
		t.Errorf("1h window after restart = %+v", w)
	}
	if w := after.Reads.Windows["5m"]; w.Compared != 0 {
		t.Errorf("5m window after restart = %+v", w)
	}
	evAfter, _ := s2.Evidence(userRoute, stats.EvidenceQuery{Fields: 10, Diffs: true, History: time.Hour})
	if a, b := mustJSON(t, evAfter.Fields.Fields), mustJSON(t, evBefore.Fields.Fields); a != b {
		t.Errorf("fields after restart = %s, before %s", a, b)
	}
	if len(evAfter.Diffs.Groups) != 1 || evAfter.Diffs.Groups[0].Count != 100 || len(evAfter.Diffs.Groups[0].Samples) != 3 {
		t.Errorf("groups after restart = %s", mustJSON(t, evAfter.Diffs.Groups))
	}
}

func TestRetentionForgetsIdleRoutes(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s, err := stats.Open(stats.Options{Dir: dir, Now: c.Now, FlushInterval: time.Hour, Retention: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s.Read(match("gone"))
	s.Read(match("user"))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	c.Add(49 * time.Hour)
	s.Read(match("user"))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, c)
	for _, v := range s2.Routes(nil) {
		if v.Name == "gone" {
			t.Errorf("route idle past retention still kept: %+v", v.Reads.Window)
		}
	}
	if v := one(t, s2, userRoute); v.Reads.Compared != 2 {
		t.Errorf("user compared = %d", v.Reads.Compared)
	}
}

func TestSecondOpenOfTheSameDirFails(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, newClock())
	start := time.Now()
	if _, err := stats.Open(stats.Options{Dir: dir}); err == nil {
		t.Fatal("a second store opened the same file")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("waited %v for the lock", d)
	}
}

// TestConcurrentRecordingAndFlushing runs writers against flushes under
// -race and checks that nothing was lost.
func TestConcurrentRecordingAndFlushing(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s, err := stats.Open(stats.Options{Dir: dir, Now: c.Now, FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				if i%10 == 0 {
					s.Read(priceMismatch("user", i))
				} else {
					ev := match("user")
					if g%2 == 0 {
						ev.Override = "acme"
					}
					s.Read(ev)
				}
				s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			s.Routes([]stats.RouteInfo{userRoute})
			s.Evidence(userRoute, stats.EvidenceQuery{Fields: 5, Diffs: true, History: time.Hour})
			c.Add(time.Second)
		}
	})
	wg.Wait()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, c)
	v := one(t, s2, userRoute)
	if v.Reads.Compared != 8000 || v.Reads.Mismatched != 800 || v.Writes.SecondarySucceeded != 8000 {
		t.Errorf("after concurrent run: reads %+v writes %d", v.Reads.Window, v.Writes.SecondarySucceeded)
	}
	if v.Overrides[0].Reads.Compared != 2*1800 {
		t.Errorf("acme compared = %d, want 3600", v.Overrides[0].Reads.Compared)
	}
}

func TestSecretsNeverReachTheDisk(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s, err := stats.Open(stats.Options{Dir: dir, Now: c.Now, FlushInterval: time.Hour, Redact: stats.RedactOptions{
		Headers: []string{"X-Session"},
		Paths:   []string{"$.user.ssn", "$..token"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ev := priceMismatch("user", 1)
	ev.Request.Header.Set("X-Session", "sess-PLAIN-1")
	ev.Request.Header.Set("Cookie", "sid=cookie-PLAIN-2")
	ev.Old.Body = []byte(`{"user":{"ssn":"111-PLAIN-3","name":"a"},"auth":{"token":"tok-PLAIN-4"}}`)
	ev.New.Body = []byte(`{"user":{"ssn":"222-PLAIN-5","name":"b"},"auth":{"token":"tok-PLAIN-4"}}`)
	ev.Result.Diffs = append(ev.Result.Diffs,
		compare.Difference{Path: "$['user']['ssn']", Kind: "changed", Old: `"111-PLAIN-3"`, New: `"222-PLAIN-5"`},
		compare.Difference{Path: "$['user']", Kind: "changed", Old: string(`{"ssn":"111-PLAIN-3","name":"a"}`), New: `{"ssn":"222-PLAIN-5","name":"b"}`},
		compare.Difference{Path: "header:Authorization", Kind: "changed", Old: "Bearer PLAIN-6", New: "Bearer PLAIN-7"})
	s.Read(ev)
	e, _ := s.Evidence(userRoute, stats.EvidenceQuery{Diffs: true})
	shown := mustJSON(t, e)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(filepath.Join(dir, "stats.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, where := range []struct {
		name string
		b    []byte
	}{{"api", []byte(shown)}, {"stats.db", disk}} {
		if bytes.Contains(where.b, []byte("PLAIN")) || bytes.Contains(where.b, []byte("s3cret")) || bytes.Contains(where.b, []byte("sid=abc")) {
			i := bytes.Index(where.b, []byte("PLAIN"))
			t.Errorf("a secret reached %s: ...%s...", where.name, where.b[max(0, i-80):min(len(where.b), i+40)])
		}
	}
	// Redaction keeps "old and new differ here" visible.
	smp := e.Diffs.Groups[0].Samples[0]
	var ssn [2]string
	for _, d := range smp.Diffs {
		if d.Path == "$['user']['ssn']" {
			ssn = [2]string{d.Old, d.New}
		}
	}
	if !strings.HasPrefix(ssn[0], `"[redacted `) || ssn[0] == ssn[1] {
		t.Errorf("ssn diff = %q", ssn)
	}
	if !strings.Contains(smp.Old.Body, `"name":"a"`) {
		t.Errorf("old body lost what was not secret: %s", smp.Old.Body)
	}
	// The same token on both sides hashes the same.
	var oldTok, newTok map[string]any
	json.Unmarshal([]byte(smp.Old.Body), &oldTok)
	json.Unmarshal([]byte(smp.New.Body), &newTok)
	if a, b := oldTok["auth"].(map[string]any)["token"], newTok["auth"].(map[string]any)["token"]; a != b || a == nil {
		t.Errorf("equal secrets hash differently: %v %v", a, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A shutdown whose drain took its whole budget still writes the evidence:
// Close flushes whatever its context says (it was cut before the flush, and
// lost up to a flush interval of counts and samples).
func TestCloseFlushesAfterTheShutdownsDeadline(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := open(t, dir, c)
	for range 10 {
		s.Read(match("user"))
	}
	spent, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(spent); err != nil {
		t.Fatal(err)
	}
	if got := one(t, open(t, dir, c), userRoute).Reads.Window.Compared; got != 10 {
		t.Errorf("after a restart %d reads compared, want the 10 recorded before Close", got)
	}
}

// Past the 500 paths a route tracks, differing paths are counted in the
// overflow: paths once each however often they differ, counts every time,
// and the distinction survives a restart.
func TestTheFieldOverflowCountsDistinctPaths(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := open(t, dir, c)
	mismatch := func(path string) stats.ReadEvent {
		ev := match("user")
		ev.Outcome = stats.Mismatch
		ev.Result = &compare.Result{Outcome: compare.Mismatch, Diffs: []compare.Difference{{Path: path, Kind: compare.Changed, Old: "1", New: "2"}}}
		return ev
	}
	for i := range 500 {
		s.Read(mismatch(fmt.Sprintf("$['f%d']", i)))
	}
	for i := range 10 {
		s.Read(mismatch(fmt.Sprintf("$['late%d']", i%2)))
	}
	overflow := func(s *stats.Store) stats.FieldOverflow {
		ev, _ := s.Evidence(userRoute, stats.EvidenceQuery{Fields: 500})
		return ev.Fields.Overflow
	}
	if got := overflow(s); got != (stats.FieldOverflow{Paths: 2, Count: 10}) {
		t.Errorf("overflow = %+v, want 2 paths differing 10 times", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, c)
	s.Read(mismatch("$['late1']"))
	s.Read(mismatch("$['late2']"))
	if got := overflow(s); got != (stats.FieldOverflow{Paths: 3, Count: 12}) {
		t.Errorf("after a restart, overflow = %+v, want 3 paths differing 12 times", got)
	}
}

// The API's times are UTC whatever the zone of the events' clock (the
// gateway's is local): a group's first and last sighting, its samples, the
// oldest queued write, a route's and an override's.
func TestTimesAreUTC(t *testing.T) {
	c := newClock()
	s := open(t, t.TempDir(), c)
	ist := time.FixedZone("IST", 5*3600+1800)
	ev := priceMismatch("user", 0)
	ev.At = c.Now().In(ist)
	s.Read(ev)
	s.SetQueue("user", stats.QueueState{Pending: 1, Oldest: c.Now().In(ist)})
	s.SetOverrideQueue("user", "acme", stats.QueueState{Pending: 1, Oldest: c.Now().In(ist)})
	ev2, _ := s.Evidence(userRoute, stats.EvidenceQuery{Diffs: true})
	g := ev2.Diffs.Groups
	if len(g) != 1 || len(g[0].Samples) != 1 {
		t.Fatalf("groups %s", mustJSON(t, g))
	}
	for what, at := range map[string]time.Time{"first_seen": g[0].FirstSeen, "last_seen": g[0].LastSeen, "a sample's at": g[0].Samples[0].At} {
		if at.Location() != time.UTC {
			t.Errorf("%s is in %v, want UTC", what, at.Location())
		}
	}
	v := one(t, s, userRoute)
	if o := v.Writes.OldestPending; o == nil || o.Location() != time.UTC {
		t.Errorf("oldest_pending %v, want UTC", o)
	}
	if len(v.Overrides) != 1 || v.Overrides[0].Writes.OldestPending == nil || v.Overrides[0].Writes.OldestPending.Location() != time.UTC {
		t.Errorf("an override's oldest_pending: %s, want it in UTC", mustJSON(t, v.Overrides))
	}
}
