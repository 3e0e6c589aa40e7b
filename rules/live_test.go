package rules_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
)

const liveBase = "backends:\n  old: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: "

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// replace writes content to path through a rename, as editors do.
func replace(t *testing.T, path, content string) {
	t.Helper()
	write(t, path+".tmp", content)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// watch runs live.Watch until the test ends, and waits for it.
func watch(t *testing.T, live *rules.Live) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- live.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
}

// reloads records what the Live told its hook.
type reloads struct {
	mu   sync.Mutex
	ok   int
	errs []error
}

func (r *reloads) hook(_ *rules.Set, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
	} else {
		r.ok++
	}
}

func (r *reloads) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, len(r.errs)
}

func TestReloadKeepsTheLastGoodRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, liveBase+"shadow-read\n")
	var seen reloads
	live, err := rules.NewLive(path, nil, seen.hook)
	if err != nil {
		t.Fatal(err)
	}
	first := live.Status()

	write(t, path, liveBase+"shadow-reed\n")
	err = live.Reload()
	if err == nil || !strings.Contains(err.Error(), `:7:12: unknown phase "shadow-reed"`) {
		t.Fatalf("a bad file must be refused with its position: %v", err)
	}
	if live.Current().Route("users").Phase != rules.ShadowRead {
		t.Error("the last good rules must stay in force")
	}
	st := live.Status()
	if st.Version != first.Version || !strings.Contains(st.LastError, "unknown phase") || st.LastAttempt.Before(first.LastAttempt) {
		t.Errorf("status after a refused reload = %+v", st)
	}

	write(t, path, liveBase+"cutover\n")
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if live.Current().Route("users").Phase != rules.Cutover {
		t.Error("a good file takes effect")
	}
	if st := live.Status(); st.Version == first.Version || st.LastError != "" {
		t.Errorf("status after a good reload = %+v", st)
	}
	if ok, bad := seen.counts(); ok != 1 || bad != 1 {
		t.Errorf("hook saw %d good and %d bad reloads, want 1 and 1", ok, bad)
	}

	// A bad edit put back as it was: the rules in force again, and a good
	// reload for the hook (cutover_rules_last_reload_successful is 1
	// again).
	good := live.Status()
	write(t, path, liveBase+"cutoverr\n")
	if err := live.Reload(); err == nil {
		t.Fatal("a bad file was taken")
	}
	write(t, path, liveBase+"cutover\n")
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := live.Status(); st.Version != good.Version || st.LastError != "" {
		t.Errorf("status after the file was put back = %+v", st)
	}
	if ok, bad := seen.counts(); ok != 2 || bad != 2 {
		t.Errorf("hook saw %d good and %d bad reloads, want 2 and 2", ok, bad)
	}
}

// TestWatchSeesAConfigMapUpdate replays what the kubelet does to a mounted
// ConfigMap: the file is a symlink through ..data, and an update swaps the
// ..data link to a new timestamped directory in one rename.
func TestWatchSeesAConfigMapUpdate(t *testing.T) {
	dir := t.TempDir()
	mount := func(name, content string) {
		t.Helper()
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(d, "cutover.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mount("..2026_11_24_01", liveBase+"shadow-read\n")
	path := filepath.Join(dir, "cutover.yaml")
	if err := os.Symlink("..data/cutover.yaml", path); err != nil {
		t.Fatal(err)
	}
	var seen reloads
	live, err := rules.NewLive(path, nil, seen.hook)
	if err != nil {
		t.Fatal(err)
	}
	watch(t, live)

	waitPhase := func(want rules.Phase) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for live.Current().Route("users").Phase != want {
			if time.Now().After(deadline) {
				t.Fatalf("phase is %s, want %s after the update", live.Current().Route("users").Phase, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The watch may not be set up yet when the first update lands; keep
	// updating until one is seen.
	deadline := time.Now().Add(10 * time.Second)
	for i := 2; live.Current().Route("users").Phase != rules.Cutover; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the ConfigMap update was never seen")
		}
		mount(filepath.Base(dir)+"-v"+string(rune('a'+i)), liveBase+"cutover\n")
		time.Sleep(300 * time.Millisecond)
	}
	waitPhase(rules.Cutover)

	// A bad update is refused; the rules stay.
	mount("..bad", liveBase+"nope\n")
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, bad := seen.counts(); bad > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bad update was never tried")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if live.Current().Route("users").Phase != rules.Cutover {
		t.Error("a bad update replaced good rules")
	}
}

// A reload warns about the settings that wait for a restart, and only
// those: the request body bounds apply at once, so they are not among them.
func TestAReloadNamesWhatWaitsForARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, "server: {max_request_body: 1MiB, idle_timeout: 30s}\n"+liveBase+"shadow-read\n")
	var logs bytes.Buffer
	live, err := rules.NewLive(path, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "server: {max_request_body: 2MiB, idle_timeout: 30s}\n"+liveBase+"shadow-read\n")
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "only on restart") {
		t.Errorf("a change that applies at once was logged as waiting for a restart:\n%s", logs.String())
	}
	write(t, path, "server: {max_request_body: 2MiB, idle_timeout: 1m}\n"+liveBase+"shadow-read\n")
	if err := live.Reload(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `setting="server (but max_request_body`) {
		t.Errorf("a change of server.idle_timeout was not named:\n%s", logs.String())
	}
}

// The warning compares a file with what the process started with, not with
// the last file: a file put back to the running value is no warning, and a
// file that still differs from it is warned about at every reload.
func TestARestartWarningIsAgainstTheRunningValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	file := func(lag, phase string) string { return "shadow: {lag_factor: " + lag + "}\n" + liveBase + phase + "\n" }
	write(t, path, file("8", "shadow-read"))
	var logs bytes.Buffer
	live, err := rules.NewLive(path, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		lag, phase string
		warned     bool
	}{
		{"4", "shadow-read", true},
		{"4", "dual-write", true},  // another edit: the file still differs from the process
		{"8", "dual-write", false}, // back to the running value
	} {
		logs.Reset()
		write(t, path, file(step.lag, step.phase))
		if err := live.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), "only on restart"); got != step.warned {
			t.Errorf("lag_factor %s (the process started with 8), phase %s: warned %v, want %v:\n%s", step.lag, step.phase, got, step.warned, logs.String())
		}
		if pending := live.RestartPending(); (len(pending) == 1 && strings.HasPrefix(pending[0], "shadow")) != step.warned || len(pending) > 1 {
			t.Errorf("lag_factor %s (the process started with 8): restart pending %q", step.lag, pending)
		}
	}
}

// A file's warnings are logged when it is loaded, at the start and at
// each reload that applies it, so an operator who never runs check still
// reads them.
func TestAWarningIsLoggedAtEachLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	file := func(bound, phase string) string {
		return liveBase + phase + "\n    compare:\n      tolerance: [{path: $.a, absolute: " + bound + "}]\n"
	}
	write(t, path, file(`"0.01"`, "shadow-read"))
	var logs bytes.Buffer
	live, err := rules.NewLive(path, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	const told = `absolute \"0.01\" is a string`
	if !strings.Contains(logs.String(), told) {
		t.Errorf("at the start, the quoted bound was not logged:\n%s", logs.String())
	}
	for _, step := range []struct {
		bound, phase string
		warned       bool
	}{{`"0.01"`, "dual-write", true}, {"0.01", "shadow-read", false}} {
		logs.Reset()
		write(t, path, file(step.bound, step.phase))
		if err := live.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(logs.String(), told); got != step.warned {
			t.Errorf("reloaded with absolute: %s: warned %v, want %v:\n%s", step.bound, got, step.warned, logs.String())
		}
	}
}

// syncBuffer is a log sink the watcher's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An edit followed by SIGHUP (an explicit Reload) is one attempt: the
// watcher, seeing the same bytes, does not attempt them again (a refused
// edit was refused, logged and counted twice).
func TestTheWatcherDoesNotAttemptTheBytesJustAttempted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	write(t, path, liveBase+"shadow-read\n")
	var seen reloads
	var logs syncBuffer
	live, err := rules.NewLive(path, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), seen.hook)
	if err != nil {
		t.Fatal(err)
	}
	watch(t, live)

	bad := liveBase + "shadow-reed\n"
	write(t, path, bad)
	if err := live.Reload(); err == nil {
		t.Fatal("a bad file was taken")
	}
	// The watch may not be set up when the first write lands: write the
	// same bytes until the watcher says it saw them.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "reads as the last attempt did") {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher never passed over the bytes just attempted; log:\n%s", logs.String())
		}
		// Replaced whole, as editors do: a watcher read in the middle of
		// an in-place write would see a truncated file.
		replace(t, path, bad)
		time.Sleep(300 * time.Millisecond) // past the watcher's debounce
	}
	replace(t, path, liveBase+"cutover\n")
	deadline = time.Now().Add(10 * time.Second)
	// The hook has counted once the status no longer shows the refusal.
	for live.Current().Route("users").Phase != rules.Cutover || live.Status().LastError != "" {
		if time.Now().After(deadline) {
			t.Fatal("the good edit was never reloaded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ok, refused := seen.counts(); ok != 1 || refused != 1 {
		t.Errorf("hook saw %d good and %d refused reloads, want 1 and 1", ok, refused)
	}
}

// A file that could not be read for a moment (moved away and back, as
// editors and `git checkout` do) is read again when it is back, though its
// bytes are those of the rules in force: the refusal must not stick.
func TestAFileBackAfterAReadErrorIsReadAgain(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cutover.yaml")
	write(t, path, liveBase+"shadow-read\n")
	var seen reloads
	live, err := rules.NewLive(path, nil, seen.hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	if err := live.Reload(); err == nil {
		t.Fatal("a missing file was taken")
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if err := live.Reload(); err != nil {
		t.Fatalf("the file back as it was: %v", err)
	}
	if st := live.Status(); st.LastError != "" {
		t.Errorf("status after the file came back: %+v", st)
	}
	if ok, refused := seen.counts(); ok != 1 || refused != 1 {
		t.Errorf("hook saw %d good and %d refused reloads, want 1 and 1", ok, refused)
	}
}
