package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the cutover command built once for the tests that run it as a
// real process.
var binary struct {
	once sync.Once
	path string
	err  error
}

// TestMain removes the binary the process tests built: 28 MB a run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

func cutoverBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "cutover")
		out, err := exec.Command("go", "build", "-race", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		t.Fatal(binary.err)
	}
	return binary.path
}

// process is a running `cutover serve`.
type process struct {
	cmd          *exec.Cmd
	config       string // the configuration file, to rewrite for a reload
	proxy, admin string
	exited       chan struct{} // closed when the process has exited
	exitErr      error         // set before exited is closed
	stderr       *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var startedLine = regexp.MustCompile(`proxy on http://(\S+), admin on http://(\S+)`)

// startServe runs the binary with config (written to a file) and waits for
// it to print its addresses.
func startServe(t *testing.T, config, dataDir string) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cutover.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cutoverBinary(t), "serve", "--config", path, "--data-dir", dataDir, "--log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, config: path, exited: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	select {
	case line := <-lines:
		m := startedLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected first line %q\n%s", line, p.stderr)
		}
		p.proxy, p.admin = m[1], m[2]
	case <-time.After(60 * time.Second):
		t.Fatalf("cutover did not start:\n%s", p.stderr)
	}
	return p
}

func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		w.Write([]byte(`{"ok": true}`))
	}))
	defer old.Close()
	// Runs before old.Close, which would wait for the held request forever
	// if the test failed before releasing it.
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	new := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"ok": true}`))
	}))
	defer new.Close()
	p := startServe(t, fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
server: {drain_delay: 1s, shutdown_timeout: 10s}
backends:
  old: {url: %q}
  new: {url: %q}
defaults: {phase: shadow-read}
`, old.URL, new.URL), t.TempDir())

	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + p.proxy + "/slow")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		inflight <- result{status: res.StatusCode, body: string(b)}
	}()
	<-arrived
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// During the drain delay /readyz says 503 while requests are still served.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never turned 503 after SIGTERM\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	releaseOnce()
	r := <-inflight
	if r.err != nil || r.status != 200 || r.body != `{"ok": true}` {
		t.Errorf("the in-flight request was not drained: %+v", r)
	}
	select {
	case <-p.exited:
		if p.exitErr != nil {
			t.Errorf("exit: %v\n%s", p.exitErr, p.stderr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cutover did not exit after SIGTERM")
	}
	// Durations in the JSON log read as durations, not nanoseconds.
	if want := `"drain_delay":"1s","timeout":"10s"`; !strings.Contains(p.stderr.String(), want) {
		t.Errorf("the shutdown line does not say %s:\n%s", want, p.stderr)
	}
}

// TestBenchRuns runs a short `cutover bench` so the command anyone reruns
// for the README's table keeps working. Its numbers mean nothing here, so
// it does not wait for the machine to go quiet after each measurement: on a
// machine busy with other packages' tests it never does, and each wait ran
// its full 30 s (over 4m40s in all, under two CPU burners).
func TestBenchRuns(t *testing.T) {
	out, err := exec.Command(cutoverBinary(t), "bench", "--rounds", "1", "--duration", "300ms", "--sizes", "1024", "--overload", "0", "--queue-outage", "2s", "--quiet", "0", "--cutover-env", "GODEBUG=gctrace=1").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	for _, want := range []string{"| plain Go proxy, GET |", "| cutover shadow-read, GET |", "| cutover dual-write async, PUT |", "half the plain proxy's capacity", "new +100 ms", "of shadow-read's own capacity in this run",
		"| Go mirror, new +100 ms |", "beyond what it costs the mirror's", "copies answered: ", "cutover processes run with GODEBUG=gctrace=1",
		"\ngc 1 @", // a cutover process's collector, tracing as the environment asked
		"| on disk (DATA_DIR/queue.db", "| queued at the end (on disk) |"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchTakesItsSystemsDownWhenKilled kills a running bench with
// SIGKILL: the backends and proxies it started must not outlive it.
func TestBenchTakesItsSystemsDownWhenKilled(t *testing.T) {
	cmd := exec.Command(cutoverBinary(t), "bench", "--sizes", "1024", "--closed=false", "--rate", "100", "--rounds", "100", "--duration", "1s", "--overload", "0", "--queue=false", "--nginx=false")
	// Killed, the bench leaves its scratch directory: under the test's.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Two backends, the plain proxy, the Go mirror and three cutovers.
	var started []int
	pollUntil(t, 60*time.Second, "the bench starts its seven systems", func() (bool, string) {
		started = childPIDs(cmd.Process.Pid)
		return len(started) >= 7, fmt.Sprintf("%d started", len(started))
	})
	cmd.Process.Kill()
	cmd.Wait()
	for _, pid := range started {
		pollUntil(t, 20*time.Second, fmt.Sprintf("process %d exits with the bench", pid), func() (bool, string) {
			f := statFields(pid)
			// Gone, or exited and a zombie until its new parent reaps it.
			return f == nil || f[0] == "Z", fmt.Sprint(f)
		})
	}
}

func TestBenchRefusesAnEnvironmentItCannotPass(t *testing.T) {
	out, err := exec.Command(cutoverBinary(t), "bench", "--cutover-env", "GOGC=200 GOMEMLIMIT").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), `"GOMEMLIMIT" is not NAME=value`) {
		t.Fatalf("bench with a bad --cutover-env: %v\n%s", err, out)
	}
}

// TestSIGHUPReloadsAndABadFileKeepsTheRules edits the configuration of a
// running gateway: a bad edit is refused and counted, the rules in force stay;
// a good edit takes effect without a restart.
func TestSIGHUPReloadsAndABadFileKeepsTheRules(t *testing.T) {
	served := func(name string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", name)
			w.Write([]byte(`{}`))
		}))
		t.Cleanup(s.Close)
		return s
	}
	old, new := served("old"), served("new")
	cfg := func(phase string) string {
		return fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: {listen: \"127.0.0.1:0\"}\nbackends:\n  old: {url: %q}\n  new: {url: %q}\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: %s\n", old.URL, new.URL, phase)
	}
	p := startServe(t, cfg("shadow-read"), t.TempDir())
	path := p.cmd.Args[3] // serve --config PATH
	servedBy := func() string {
		res, err := http.Get("http://" + p.proxy + "/users/1")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("X-Served-By")
	}
	var (
		reloads map[string]int64
		pending []string
	)
	rulesStatus := func() (version, lastError string) {
		var st struct {
			Version        string           `json:"version"`
			LastError      string           `json:"last_error"`
			Reloads        map[string]int64 `json:"reloads"`
			RestartPending []string         `json:"restart_pending"`
		}
		res, err := http.Get("http://" + p.admin + "/api/v1/rules")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Errorf("/api/v1/rules: %v", err)
		}
		reloads, pending = st.Reloads, st.RestartPending
		return st.Version, st.LastError
	}
	v0, _ := rulesStatus()
	if by := servedBy(); by != "old" {
		t.Fatalf("shadow-read is served by %q", by)
	}

	if err := os.WriteFile(path, []byte(cfg("cut-over")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the refused reload", func() bool { _, e := rulesStatus(); return strings.Contains(e, `unknown phase "cut-over"`) })
	if v, _ := rulesStatus(); v != v0 || servedBy() != "old" {
		t.Error("a refused reload changed the rules in force")
	}
	if m := get(t, "http://"+p.admin+"/metrics"); !strings.Contains(m, `cutover_rules_reload_total{outcome="error"} 1`) {
		t.Errorf("the refused reload is not counted:\n%s", grepLines(m, "reload"))
	}
	// The API names it as the metric does (and by its earlier name).
	if reloads["error"] != 1 || reloads["failed"] != 1 {
		t.Errorf("the API's reloads = %v, want the refused one as error (and failed)", reloads)
	}

	if err := os.WriteFile(path, []byte(cfg("cutover")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { v, e := rulesStatus(); return v != v0 && e == "" })
	if by := servedBy(); by != "new" {
		t.Errorf("after the reload to cutover, reads are served by %q", by)
	}
	if pending == nil || len(pending) != 0 {
		t.Errorf("restart_pending = %#v after a reload of routes only, want []", pending)
	}

	// A setting read only at start is named until a restart.
	v1, _ := rulesStatus()
	if err := os.WriteFile(path, []byte(cfg("cutover")+"shadow: {lag_factor: 4}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload of shadow", func() bool { v, _ := rulesStatus(); return v != v1 })
	if len(pending) != 1 || !strings.HasPrefix(pending[0], "shadow") {
		t.Errorf("restart_pending = %q after shadow.lag_factor changed, want shadow named", pending)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	pollUntil(t, 20*time.Second, what, func() (bool, string) { return cond(), "" })
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
