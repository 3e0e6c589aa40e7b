package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
)

// Secrets that the client sends and the backends echo; none may be stored,
// logged or shown.
var secrets = []string{
	"Bearer-SECRET-AUTH-0001",
	"SECRET-COOKIE-0002",
	"SECRET-APIKEY-0003",
	"SECRET-SESSION-0004",
	"SECRET-PASSWORD-0005",
	"SECRET-CARD-0006",
	"SECRET-QUERY-0007",
}

func TestSecretsNeverLeave(t *testing.T) {
	// The backends disagree on a field next to the secrets, so every read is
	// a mismatch whose sample is kept; they echo the secrets in bodies and
	// headers.
	backend := func(version string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Set-Cookie", "session="+r.Header.Get("Cookie"))
			w.Header().Set("X-Session", r.Header.Get("X-Session"))
			fmt.Fprintf(w, `{"version": %q, "user": {"password": %q, "card": {"number": %q}}, "echo": {"auth": %q}}`,
				version, secrets[4], secrets[5]+version, r.Header.Get("Authorization"))
		}))
	}
	old, new := backend("1"), backend("2")
	defer old.Close()
	defer new.Close()
	dataDir := t.TempDir()
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
backends:
  old: {url: %q}
  new: {url: %q}
defaults:
  phase: shadow-read
  compare:
    compare_headers: [Set-Cookie, X-Session]
redact:
  headers: [X-Session]
  paths: ["$..password", "$.user.card.number", "$.echo.auth"]
  query: [token]
routes:
  - name: users
    match: {path: "/users/{id}"}
`, old.URL, new.URL)
	set, err := rules.Parse("cutover.yaml", strings.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	in := &instance{log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := in.start(rules.NewStatic(set), dataDir); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			in.shutdown()
		}
	}()
	for i := range 20 {
		// Reads, and writes: a write's two answers are compared too, and
		// its copy goes through the queue.
		method := "GET"
		if i%4 == 3 {
			method = "PUT"
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("http://%s/users/%d?token=%s&page=2", in.proxyAddr(), i, secrets[6]), nil)
		req.Header.Set("Authorization", secrets[0])
		req.Header.Set("Cookie", secrets[1])
		req.Header.Set("X-Api-Key", secrets[2])
		req.Header.Set("X-Session", secrets[3])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		// The client itself gets the backend's answer untouched.
		if !strings.Contains(string(body), secrets[4]) {
			t.Fatalf("the client must get the primary's answer as is: %s", body)
		}
	}
	admin := "http://" + in.adminAddr()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(get(t, admin+"/api/v1/diffs?route=users"), "version") {
		if time.Now().After(deadline) {
			t.Fatal("no mismatch sample was recorded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	shown := map[string]string{}
	for _, p := range []string{"/", "/assets/app.js", "/api/v1/routes", "/api/v1/diffs?route=users", "/api/v1/fields?route=users",
		"/api/v1/history?route=users", "/api/v1/rules", "/metrics"} {
		shown[p] = get(t, admin+p)
	}
	if !strings.Contains(shown["/api/v1/diffs?route=users"], "token=****") {
		t.Errorf("the sample's target should show the masked query:\n%s", shown["/api/v1/diffs?route=users"])
	}
	if err := in.shutdown(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	for p, text := range shown {
		assertNoSecret(t, "admin "+p, text)
	}
	assertNoSecret(t, "the logs", logs.String())
	filepath.Walk(dataDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		if filepath.Base(path) == "queue.db" {
			// The one exception, as README's Security section says: the
			// queue keeps each write as the secondary must get it,
			// credentials included, and bbolt does not zero the pages
			// a delivered write leaves.
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, "data file "+filepath.Base(path), string(b))
		return nil
	})
}

func assertNoSecret(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the secret %q", where, s)
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
