package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServeRefusesABadConfig(t *testing.T) {
	const backends = "backends:\n  old: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", backends + "routes:\n  - name: a\n    match: {path: /a}\n    phaze: cutover\n", `:7:5: unknown field "phaze"`},
		{"wrong type", backends + "routes:\n  - name: a\n    match: {path: /a}\n    sample: lots\n", `:7:13: `},
		{"unknown phase", backends + "routes:\n  - name: a\n    match: {path: /a}\n    phase: shadow\n", `:7:12: unknown phase "shadow"`},
		{"bad path pattern", backends + "routes:\n  - name: a\n    match: {path: \"/a/{id\"}\n", `:6:19: path pattern "/a/{id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cutover.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"serve", "--config", path, "--data-dir", t.TempDir()}, &stdout, &stderr)
			if code == 0 {
				t.Fatal("serve started with a bad configuration")
			}
			if !strings.Contains(stderr.String(), path+tt.want) {
				t.Errorf("stderr:\n%s\nwant it to contain %q", stderr.String(), path+tt.want)
			}
			if !regexp.MustCompile(`^\S+:\d+:\d+: `).MatchString(stderr.String()) {
				t.Errorf("stderr does not start with file:line:col: %q", stderr.String())
			}
		})
	}
}

func TestCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "../../rules/testdata/design.yaml"}, &stdout, &stderr); code != 0 {
		t.Fatalf("check of the DESIGN.md example: exit %d\n%s", code, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("backends:\n  old: {url: nope}\nroutes:\n  - name: a\n    phase: x\n    match: {path: /a}\n"), 0o600)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{path + ":2:14: \"nope\" is not a backend URL", path + ":5:12: unknown phase \"x\"", "backend new needs a url"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, stderr.String())
		}
	}
}

// shadow.lag_factor waits for 128 shadow requests in flight: with fewer
// workers it never acts, and check says so, at the setting (or at shadow:
// when the default is meant), without failing; with lag_factor: 0 or
// enough workers it says nothing.
func TestCheckSaysWhenLagFactorCannotAct(t *testing.T) {
	for _, tt := range []struct {
		shadow, warning string
	}{
		{"shadow:\n  workers: 64\n  lag_factor: 4\n", ":2:12: shadow.workers (64) allows fewer shadow requests in flight than the 128 shadow.lag_factor waits for: it never acts"},
		{"shadow:\n  workers: 127\n", ":2:12: shadow.workers (127) allows fewer"},
		{"shadow:\n  workers: 64\n  lag_factor: 0\n", ""},
		{"shadow:\n  workers: 128\n", ""},
		{"", ""},
	} {
		checkWarns(t, tt.shadow+testBackends, tt.warning)
	}
}

// secondary_writes: off is for cutover; in a phase that writes both
// backends it leaves new without writes, which check says, where.
func TestCheckSaysWhenSecondaryWritesOffLeavesNewBehind(t *testing.T) {
	route := "routes:\n  - name: orders\n    match: {path: \"/orders/*\"}\n"
	for _, tt := range []struct {
		cfg, warning string
	}{
		{"defaults:\n  phase: dual-write\n  secondary_writes: off\n", `:6:21: route "unmatched": secondary_writes is off in phase dual-write, so new gets none of its writes`},
		{"defaults:\n  phase: shadow-read\n" + route + "    secondary_writes: off\n", `:9:23: route "orders": secondary_writes is off in phase shadow-read`},
		{"defaults:\n  phase: backfill\n" + route + "    secondary_writes: off\n", `:9:23: route "orders": secondary_writes is off in phase backfill`},
		{"defaults:\n  phase: cutover\n  secondary_writes: off\n" + route + "    overrides:\n      - name: acme\n        when: {header: X-Tenant, equals: acme}\n        phase: dual-write\n",
			`:13:16: route "orders" (off from defaults), override "acme": secondary_writes is off in phase dual-write`},
		{"defaults:\n  phase: cutover\n  secondary_writes: off\n" + route, ""},
		// Inherited: told at the defaults' line, and said so.
		{"defaults:\n  phase: cutover\n  secondary_writes: off\n" + route + "    phase: dual-write\n", `:6:21: route "orders" (off from defaults): secondary_writes is off in phase dual-write`},
		// A route that never writes has no write to keep from new.
		{"defaults:\n  phase: cutover\n  secondary_writes: off\nroutes:\n  - name: user\n    match: {methods: [GET, HEAD], path: \"/users/{id}\"}\n    phase: shadow-read\n", ""},
		{"defaults:\n  phase: cutover\n  secondary_writes: off\nroutes:\n  - name: search\n    match: {methods: [POST], path: \"/search\"}\n    read: true\n    phase: shadow-read\n", ""},
		{"defaults:\n  phase: cutover\n  secondary_writes: off\nroutes:\n  - name: user\n    match: {methods: [GET], path: \"/users/{id}\"}\n    overrides:\n      - name: acme\n        when: {header: X-Tenant, equals: acme}\n        phase: dual-write\n", ""},
		{"defaults:\n  phase: prepare\n  secondary_writes: off\n", ""},
		{"defaults:\n  phase: dual-write\n  secondary_writes: sync\n", ""},
	} {
		checkWarns(t, testBackends+tt.cfg, tt.warning)
	}
}

// A method no client is likely to send (a typo), and CONNECT, which the
// gateway refuses, are told at their place; a WebDAV method is not.
func TestCheckSaysWhenARouteNamesAnUnlikelyMethod(t *testing.T) {
	route := func(methods string) string {
		return "routes:\n  - name: users\n    match: {methods: [" + methods + "], path: \"/users/{id}\"}\n"
	}
	for _, tt := range []struct {
		cfg, warning string
	}{
		{route("get, GTE"), `:6:28: route "users": GTE is not in IANA's registry of HTTP methods, so the route sees only requests that send exactly GTE`},
		{route("CONNECT"), `:6:23: route "users": CONNECT is refused by the gateway (400), whatever the routes say`},
		{route("GET, put, PROPFIND, PURGE, CHECKIN, VERSION-CONTROL, ACL, MKCALENDAR, QUERY"), ""},
	} {
		checkWarns(t, testBackends+tt.cfg, tt.warning)
	}
}

const testBackends = "backends:\n  old: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\n"

// checkWarns checks cfg: it must pass, with warning (after the file's name)
// among what it says on stderr, or saying nothing there when warning is "".
func checkWarns(t *testing.T, cfg, warning string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", path}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), path+": ok") {
		t.Fatalf("%q: check exit %d, %q %q; want ok", cfg, code, stdout.String(), stderr.String())
	}
	switch {
	case warning == "" && stderr.Len() > 0:
		t.Errorf("%q: check warned %q", cfg, stderr.String())
	case warning != "" && !strings.Contains(stderr.String(), "warning: "+path+warning):
		t.Errorf("%q: check said %q, want %q", cfg, stderr.String(), "warning: "+path+warning)
	}
}

// check reads the files and variables the configuration names as serve
// does, and says what serve would refuse, where in the file, without
// failing (it may run where the secrets are not); serve refuses, at the
// same place. The file may come from CUTOVER_CONFIG too.
func TestCheckToldOfWhatServeWouldRefuse(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("too short"), 0o600)
	path := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(path, []byte("admin:\n  auth:\n    token_file: "+filepath.Join(dir, "no-token")+"\n"+
		"    operator_token_file: "+filepath.Join(dir, "no-operator-token")+"\n"+
		"redact:\n  key_file: "+short+"\n"+
		"backends:\n  old: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\n"), 0o600)
	t.Setenv("CUTOVER_CONFIG", path)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), path+": ok") {
		t.Fatalf("check: exit %d, %q %q; want the file from CUTOVER_CONFIG checked ok", code, stdout.String(), stderr.String())
	}
	// Every token file that cannot be read, not only the first.
	for _, want := range []string{"warning: " + path + ":3:17: admin.auth.token_file: open ", "warning: " + path + ":4:26: admin.auth.operator_token_file: open ",
		"warning: " + path + ":6:13: redact.key_file " + short + ": the key must have at least 16 bytes"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("check's warnings:\n%s\nwant %q", stderr.String(), want)
		}
	}
	stderr.Reset()
	if code := run([]string{"check", "--config", path, "other.yaml"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "give one") {
		t.Errorf("check with --config and an argument: exit %d, %q; want 2, told to give one file", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--log-format", "text"}, io.Discard, &stderr); code == 0 {
		t.Fatal("serve started")
	}
	if !strings.Contains(stderr.String(), path+":6:13: redact.key_file") {
		t.Errorf("serve: %s, want the key file's problem at its line", stderr.String())
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run([]string{"version"}, &stdout, io.Discard); code != 0 || !strings.HasPrefix(stdout.String(), "cutover ") {
		t.Errorf("version: %d %q", code, stdout.String())
	}
}

func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("CUTOVER_CONFIG", filepath.Join(t.TempDir(), "from-env.yaml"))
	var stderr bytes.Buffer
	run([]string{"serve"}, io.Discard, &stderr)
	if !strings.Contains(stderr.String(), "from-env.yaml") {
		t.Errorf("CUTOVER_CONFIG was not used: %s", stderr.String())
	}
}

// A configuration file that does not exist: each command says how it takes
// one.
func TestAMissingConfigurationSaysHowToGiveOne(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"check", missing}, "give the file to check as the argument"},
		{[]string{"serve", "--config", missing}, "pass --config FILE or set CUTOVER_CONFIG"},
		{[]string{"diff", "--config", missing, missing, missing}, "pass --config FILE or set CUTOVER_CONFIG"},
	} {
		var stderr bytes.Buffer
		if code := run(c.args, io.Discard, &stderr); code == 0 {
			t.Errorf("%s: exit 0", c.args[0])
		}
		if !strings.Contains(stderr.String(), c.want) || !strings.Contains(stderr.String(), "missing.yaml") {
			t.Errorf("%s: %q, want the file named and %q", c.args[0], stderr.String(), c.want)
		}
	}
}

// A variable that sets a flag to a value it cannot take stops the command
// with exit 2 and says which variable and why; it stopped silently.
func TestABadEnvironmentValueIsReported(t *testing.T) {
	for _, c := range []struct {
		env, value string
		args       []string
	}{
		{"CUTOVER_GC_PERCENT", "abc", []string{"serve"}},
		{"CUTOVER_PRINT", "yes", []string{"check", "testdata/diff/cutover.yaml"}},
		{"CUTOVER_MAX_DIFFS", "x", []string{"diff"}},
	} {
		t.Run(c.env, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			var stderr bytes.Buffer
			if code := run(c.args, io.Discard, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if want := c.env + `="` + c.value + `"`; !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "unset it") {
				t.Errorf("stderr %q does not name %s and say what to do", stderr.String(), want)
			}
		})
	}
}

// TestDemo runs the demo with traffic and checks that reads are compared
// per route, then stops it.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- demo(ctx, demoOptions{listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", rate: 200,
			ready: func(p, a string) { addrs <- [2]string{p, a} }}, io.Discard, slog.New(slog.DiscardHandler))
	}()
	var admin string
	select {
	case a := <-addrs:
		admin = a[1]
	case err := <-done:
		t.Fatalf("demo stopped: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		views := fetchRoutes(t, "http://"+admin+"/api/v1/routes")
		if views["users"].Reads.Compared >= 20 && views["orders"].Reads.Mismatched >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not compare reads: %+v", views)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo: %v", err)
	}
}

type routeView struct {
	Name  string `json:"name"`
	Reads struct {
		Compared   int64 `json:"compared"`
		Matched    int64 `json:"matched"`
		Mismatched int64 `json:"mismatched"`
	} `json:"reads"`
}

func fetchRoutes(t *testing.T, url string) map[string]routeView {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var views []routeView
	if err := json.NewDecoder(res.Body).Decode(&views); err != nil {
		t.Fatal(err)
	}
	out := map[string]routeView{}
	for _, v := range views {
		out[v.Name] = v
	}
	return out
}

// A listener that cannot open says what to do: another process has the
// port (a real one, taken here), with the key and file to change.
func TestATakenPortSaysWhatToChange(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = net.Listen("tcp", taken.Addr().String())
	if err == nil {
		t.Fatal("the port was taken twice")
	}
	want := " (another process listens there: stop it, or change admin.listen in cutover.yaml)"
	if got := listenHint(err, "admin.listen", "cutover.yaml"); got != want {
		t.Errorf("hint %q, want %q", got, want)
	}
	if got := listenHint(errors.New("no route"), "listen", "cutover.yaml"); got != "" {
		t.Errorf("an error without a known cause got the hint %q", got)
	}
}

// --help asked for the usage, and gets it with exit 0; a flag that is not
// one is a mistake, exit 2.
func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range []string{"serve", "check", "diff", "demo", "bench"} {
		for _, tt := range []struct {
			flag string
			code int
		}{{"--help", 0}, {"-h", 0}, {"--no-such-flag", 2}} {
			var stdout, stderr bytes.Buffer
			if code := run([]string{cmd, tt.flag}, &stdout, &stderr); code != tt.code || !strings.Contains(stderr.String(), "-") {
				t.Errorf("cutover %s %s: exit %d, want %d; stderr %q", cmd, tt.flag, code, tt.code, stderr.String())
			}
		}
	}
}
