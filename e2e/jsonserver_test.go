package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// jsonServer finds json-server (typicode's fake REST API, a server this
// project did not write): $CUTOVER_JSON_SERVER, or .tools/ where .ci/run
// installs it with npm.
func jsonServer(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CUTOVER_JSON_SERVER"), "../.tools/node_modules/.bin/json-server"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			if _, err := exec.LookPath("node"); err == nil {
				abs, err := filepath.Abs(c)
				if err != nil {
					t.Fatal(err)
				}
				return abs
			}
		}
	}
	if os.Getenv("CUTOVER_REQUIRE_JSON_SERVER") != "" {
		t.Fatal("json-server is required (CUTOVER_REQUIRE_JSON_SERVER is set) but not found; run: npm install --prefix .tools json-server@0.17.4")
	}
	t.Skip("json-server not installed (npm install --prefix .tools json-server@0.17.4)")
	return ""
}

const seed = `{
  "users": [
    {"id": 1, "name": "ada", "roles": ["admin"]},
    {"id": 2, "name": "grace", "roles": ["dev"]},
    {"id": 3, "name": "linus", "roles": ["dev", "ops"]}
  ],
  "orders": [
    {"id": 10, "userId": 1, "total": 12.5}
  ]
}`

// startJSONServer runs one json-server over its own copy of the seed and
// returns its base URL. json-server takes a port number, not a listener:
// the port is free when chosen, and another socket of the test run may take
// it before node binds it; then json-server exits and another port is
// tried.
func startJSONServer(t *testing.T, bin string) string {
	t.Helper()
	for range 3 {
		if base, ok := tryJSONServer(t, bin); ok {
			return base
		}
	}
	t.Fatal("json-server did not start on any of three ports")
	return ""
}

func tryJSONServer(t *testing.T, bin string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "db.json")
	if err := os.WriteFile(db, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--host", "127.0.0.1", "--port", fmt.Sprint(port), "--quiet", db)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Its own seed answers, not whatever else took the port.
		res, err := http.Get(base + "/users/1")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && strings.Contains(string(body), `"ada"`) {
				return base, true
			}
		}
		select {
		case <-exited:
			t.Logf("json-server on port %d exited before it answered (port taken?)", port)
			return "", false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("json-server on %s did not start", base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKeepsTwoRealRESTServersInStep puts cutover, configured in the
// DESIGN.md shape, in front of two json-server instances, and checks that
// creates, updates and deletes leave both with the same data, and that reads
// are compared per route.
func TestKeepsTwoRealRESTServersInStep(t *testing.T) {
	bin := jsonServer(t)
	oldURL, newURL := startJSONServer(t, bin), startJSONServer(t, bin)
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
backends:
  old: {url: %q, timeout: 5s}
  new: {url: %q, timeout: 5s}
defaults:
  phase: shadow-read
  secondary_writes: async
  compare:
    ignore_headers: ["Date", "ETag", "X-Powered-By"]
routes:
  - name: user
    match: {methods: [GET, PUT, PATCH, DELETE], path: "/users/{id}"}
  - name: users
    match: {methods: [GET, POST], path: "/users"}
  - name: order
    match: {methods: [GET, PUT, PATCH, DELETE], path: "/orders/{id}"}
  - name: orders
    match: {methods: [GET, POST], path: "/orders"}
`, oldURL, newURL)
	set, err := rules.Parse("cutover.yaml", strings.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	store := stats.New()
	proxy, err := gateway.New(gateway.Config{Rules: rules.NewStatic(set), Stats: store})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = proxy.NewServer(nil)
	srv.Listener = gateway.FramingListener(srv.Listener)
	srv.Start()
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		proxy.Close(ctx)
	}()

	do := func(method, path, body string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	// Creates name their ids: two servers picking ids on their own would
	// diverge, which no proxy can repair.
	do("POST", "/users", `{"id": 4, "name": "ken", "roles": ["dev"]}`, 201)
	do("POST", "/orders", `{"id": 11, "userId": 4, "total": 99.99}`, 201)
	do("PUT", "/users/2", `{"name": "grace hopper", "roles": ["admiral", "dev"]}`, 200)
	do("PATCH", "/users/4", `{"roles": ["dev", "unix"]}`, 200)
	do("PATCH", "/orders/10", `{"total": 15}`, 200)
	do("DELETE", "/users/3", "", 200)
	do("POST", "/users", `{"id": 5, "name": "barbara"}`, 201)
	do("DELETE", "/orders/11", "", 200)

	deadline := time.Now().Add(10 * time.Second)
	for proxy.QueueDepth() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d secondary writes still queued", proxy.QueueDepth())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, coll := range []string{"users", "orders"} {
		o, n := fetchJSON(t, oldURL+"/"+coll), fetchJSON(t, newURL+"/"+coll)
		if !reflect.DeepEqual(o, n) {
			t.Errorf("%s differ after the writes:\nold %v\nnew %v", coll, o, n)
		}
	}
	if u := fetchJSON(t, newURL+"/users"); len(u.([]any)) != 4 {
		t.Errorf("new backend users = %v, want 4 after 2 creates and 1 delete", u)
	}

	for _, id := range []string{"1", "2", "4", "5", "3"} {
		want := 200
		if id == "3" {
			want = 404
		}
		do("GET", "/users/"+id, "", want)
	}
	do("GET", "/orders/10", "", 200)
	do("GET", "/users", "", 200)
	deadline = time.Now().Add(10 * time.Second)
	for {
		views := map[string]stats.RouteView{}
		for _, v := range store.Routes(nil) {
			views[v.Name] = v
		}
		u, o, all := views["user"].Reads, views["order"].Reads, views["users"].Reads
		if u.Compared == 5 && o.Compared == 1 && all.Compared == 1 {
			if u.Mismatched+o.Mismatched+all.Mismatched != 0 {
				t.Errorf("servers in step answer the same: user %+v order %+v users %+v", u, o, all)
			}
			if w := views["user"].Writes; w.SecondarySucceeded != 3 {
				t.Errorf("user writes on the secondary = %+v, want 3 landed (PUT, PATCH, DELETE)", w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reads not compared: user %+v order %+v users %+v", u, o, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fetchJSON(t *testing.T, url string) any {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
