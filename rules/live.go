package rules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Live holds the rule set in force and replaces it whole when the file
// changes. A file that fails validation never replaces a good set: the last
// good rules stay in force and the error is kept for the admin API.
type Live struct {
	path     string
	log      *slog.Logger
	onReload func(*Set, error)

	cur    atomic.Pointer[Set]
	status atomic.Pointer[Status]
	// started is the set the process started with: what the settings
	// read only at start (restartOnly) still are.
	started *Set
	mu      sync.Mutex // one reload at a time
	// read is the SHA-256 of the bytes the last attempt read, under mu.
	read [sha256.Size]byte
}

// Status describes the rules in force and the last reload attempt.
type Status struct {
	Version     string    `json:"version"`
	Source      string    `json:"source"`
	Loaded      time.Time `json:"loaded"`
	LastAttempt time.Time `json:"last_attempt"`
	// LastError is the reason the last attempt was refused, or "" when the
	// rules in force come from the last attempt.
	LastError string `json:"last_error,omitempty"`
}

// NewLive loads path; a configuration that does not validate is an error
// here, since there are no last good rules yet. onReload, if not nil, is
// called after every later reload attempt with the new set or the error.
func NewLive(path string, log *slog.Logger, onReload func(*Set, error)) (*Live, error) {
	src, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	set, err := Parse(path, bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live{path: path, log: log, onReload: onReload, read: sha256.Sum256(src), started: set}
	l.warn(set)
	l.cur.Store(set)
	l.status.Store(&Status{Version: set.Version, Source: path, Loaded: set.Loaded, LastAttempt: set.Loaded})
	return l, nil
}

// warn logs what the file says that is accepted but should change.
func (l *Live) warn(set *Set) {
	for _, w := range set.Warnings {
		l.log.Warn("the configuration is accepted, with a warning", slog.String("warning", w.Error()))
	}
}

// NewStatic wraps a set that never reloads (demo, tests, `cutover diff`).
func NewStatic(set *Set) *Live {
	l := &Live{log: slog.New(slog.DiscardHandler), started: set}
	l.cur.Store(set)
	l.status.Store(&Status{Version: set.Version, Source: set.Source, Loaded: set.Loaded, LastAttempt: set.Loaded})
	return l
}

// Current returns the rule set in force.
func (l *Live) Current() *Set { return l.cur.Load() }

// Status returns the rules' version and the last reload's result.
func (l *Live) Status() Status { return *l.status.Load() }

// Reload reads the file again. On success the new set is in force for the
// next request; on failure the old one stays and the error is returned.
// A file that reads as the last attempt did is not attempted again: its
// outcome is the last attempt's, not counted again.
func (l *Live) Reload() error { return l.reload(false) }

// readConfig reads a configuration file, up to one byte past the limit
// Parse enforces.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("read config: %s is a directory: give the configuration file, such as %s", path, filepath.Join(path, "cutover.yaml"))
	}
	src, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return src, nil
}

// reload is Reload; fromWatcher says the watcher asks. Bytes the last attempt
// read are not attempted again (an edit followed by SIGHUP was two
// attempts to the watcher and the signal, a refused edit two refusals).
// The hook runs before the status changes, so whoever sees the status sees
// the attempt counted.
func (l *Live) reload(fromWatcher bool) error {
	if l.path == "" {
		return errors.New("these rules were not loaded from a file")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	st := l.Status()
	st.LastAttempt = now
	src, err := readConfig(l.path)
	var set *Set
	if err != nil {
		// Whatever comes back next (the same file, restored) is read anew.
		l.read = [sha256.Size]byte{}
	} else {
		sum := sha256.Sum256(src)
		if sum == l.read {
			// Parsing depends on the bytes alone (and the environment,
			// which a running process keeps): the outcome would be the
			// last attempt's.
			level := slog.LevelInfo
			if fromWatcher {
				level = slog.LevelDebug
			}
			l.log.Log(context.Background(), level, "rules file reads as the last attempt did; not attempted again",
				slog.String("path", l.path), slog.String("version", st.Version), slog.String("last_error", st.LastError))
			if st.LastError != "" {
				return errors.New(st.LastError)
			}
			return nil
		}
		l.read = sum
		set, err = Parse(l.path, bytes.NewReader(src))
	}
	if err != nil {
		st.LastError = err.Error()
		l.log.Error("rules reload refused; the last good rules stay in force", slog.String("version", st.Version), slog.String("error", err.Error()))
		if l.onReload != nil {
			l.onReload(nil, err)
		}
		l.status.Store(&st)
		return err
	}
	old := l.cur.Load()
	if set.Version == old.Version {
		// The rules in force, written again: a good reload all the same,
		// and the one that ends a refused one (a file put back as it was
		// after a bad edit must clear the failure the hook reported).
		if st.LastError != "" {
			l.log.Info("rules file back to the rules in force; the last refusal is over", slog.String("version", set.Version))
		} else {
			l.log.Info("rules reloaded, unchanged", slog.String("version", set.Version))
		}
		st.LastError = ""
		if l.onReload != nil {
			l.onReload(old, nil)
		}
		l.status.Store(&st)
		return nil
	}
	// Against the start, not the last file: a file put back to the
	// running value is no warning, and a difference is said at every
	// reload until a restart.
	for _, what := range restartOnly(l.started, set) {
		l.log.Warn("this setting differs from the value the process started with, and changes only on restart; the running value stays", slog.String("setting", what))
	}
	l.warn(set)
	l.cur.Store(set)
	l.log.Info("rules reloaded", slog.String("version", set.Version), slog.Int("routes", len(set.Routes)))
	if l.onReload != nil {
		l.onReload(set, nil)
	}
	l.status.Store(&Status{Version: set.Version, Source: l.path, Loaded: set.Loaded, LastAttempt: now})
	return nil
}

// RestartPending names the settings read only at start whose value in the
// rules in force differs from the one the process runs with: they take
// effect at the next restart. Empty when there are none.
func (l *Live) RestartPending() []string {
	return restartOnly(l.started, l.cur.Load())
}

// restartOnly names the settings that differ between two sets but are only
// read at start (listeners, backends, bounds of background work). Some of
// their sections are read anew: server.max_request_body and
// shadow.write_buffer for each request, server.drain_delay and
// server.shutdown_timeout when shutting down; redact for logs and the held
// list, while the statistics keep the start's until a restart.
func restartOnly(old, new *Set) []string {
	var out []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, name)
		}
	}
	so, sn := old.Server, new.Server
	so.MaxRequestBody, so.DrainDelay, so.ShutdownTimeout = sn.MaxRequestBody, sn.DrainDelay, sn.ShutdownTimeout
	sho, shn := old.Shadow, new.Shadow
	sho.WriteBuffer = shn.WriteBuffer
	check("listen", old.Listen, new.Listen)
	check("admin", old.Admin, new.Admin)
	check("server (but max_request_body, drain_delay and shutdown_timeout, which apply now)", so, sn)
	check("shadow (but write_buffer, which applies now)", sho, shn)
	check("queue", old.Queue, new.Queue)
	check("redact, for the statistics (logs and the held list use the new one now)", old.Redact, new.Redact)
	check("backends", old.Backends, new.Backends)
	return out
}

// reloadDebounce lets an editor's or Kubernetes' burst of events settle into
// one reload.
const reloadDebounce = 250 * time.Millisecond

// Watch reloads when the file's directory changes, until ctx ends. It
// watches the directory, not the file: Kubernetes updates a mounted
// ConfigMap by swapping a ..data symlink, and editors replace files by
// renaming, both of which a watch on the file itself would lose.
func (l *Live) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch rules: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(l.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch rules in %s: %w", dir, err)
	}
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !l.concerns(ev.Name) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(reloadDebounce)
			} else {
				timer.Reset(reloadDebounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			l.log.Warn("rules watch error", slog.String("error", err.Error()))
		case <-fire:
			fire = nil
			_ = l.reload(true) // logged by reload, counted by the onReload hook
		}
	}
}

// concerns reports whether an event in the directory may change the file:
// the file itself, or Kubernetes' ..data link swap.
func (l *Live) concerns(name string) bool {
	base := filepath.Base(name)
	return base == filepath.Base(l.path) || base == "..data"
}
