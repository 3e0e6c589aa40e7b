package web_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// findChromium returns the browser to drive, or "" when there is none.
// CUTOVER_CHROMIUM names one explicitly.
func findChromium() string {
	if p := os.Getenv("CUTOVER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile, or skips the
// test when none is installed and CUTOVER_REQUIRE_BROWSER is unset (CI sets
// it, so a missing browser fails there).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		if os.Getenv("CUTOVER_REQUIRE_BROWSER") != "" {
			t.Fatal("CUTOVER_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium)")
		}
		t.Skip("no Chromium installed; set CUTOVER_REQUIRE_BROWSER=1 to make this a failure")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container has no user namespace sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// screenshotDir is where browser tests save what they saw:
// $CUTOVER_SCREENSHOTS, or cutover-screenshots in the temporary directory.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CUTOVER_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cutover-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	fmt.Fprintf(os.Stderr, "screenshot: %s\n", path)
}

// waitFor polls a page predicate until it is truthy, for at most 15 s.
func waitFor(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

const (
	scriptPayload = `<script>window.__xss=1</script>`
	imgPayload    = `<img src=/xss-probe onerror="window.__xss=2">`
)

// TestDashboardInABrowser drives the real dashboard in Chromium over a
// store carrying 900 matches and 100 mismatches, some of whose values are
// markup an attacker could make a backend return.
func TestDashboardInABrowser(t *testing.T) {
	ctx := newBrowser(t)
	f := newFixture(t)
	// The payloads come first, so they are among the samples kept.
	for i := range 3 {
		f.store.Read(mismatchEvent(i, scriptPayload, imgPayload))
	}
	f.feed900x100()
	// Count requests for the image the payload names: any would prove the
	// page turned data into markup, whatever the CSP then blocked.
	var probes atomic.Int64
	inner := f.srv.Config.Handler
	f.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/xss-probe") {
			probes.Add(1)
		}
		inner.ServeHTTP(w, r)
	})

	// Overview.
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the user row", `!!document.querySelector('tr.route-row[data-route="user"] .badge')`)
	waitFor(t, ctx, "the sparkline", `!!document.querySelector('tr.route-row[data-route="user"] .spark canvas')`)
	rate := eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="user"] .match-rate').firstChild.textContent`)
	// 900 of 1003 compared (3 more mismatches carry the payloads).
	if rate != "89.73 %" {
		t.Errorf("overview match rate = %q, want 89.73 %% (900/1003, cut not rounded)", rate)
	}
	if b := eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="user"] .badge').textContent`); b != "not ready" {
		t.Errorf("user badge = %q", b)
	}
	if b := eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="orders"] .badge').dataset.status`); b != "insufficient_data" {
		t.Errorf("orders badge = %q", b)
	}
	// Worst first: the not-ready route is listed before the one still
	// gathering data.
	if first := eval[string](t, ctx, `document.querySelector('tr.route-row').dataset.route`); first != "user" {
		t.Errorf("first row = %q, want user", first)
	}
	screenshot(t, ctx, "overview")

	// Route page.
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/#/route/user")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the fields table", `!!document.querySelector('#fields .field-path')`)
	waitFor(t, ctx, "the chart", `!!document.querySelector('#chart canvas')`)
	if p := eval[string](t, ctx, `document.querySelector('#fields .field-path').textContent`); p != "$['contacts'][*]['email']" {
		t.Errorf("top field = %q", p)
	}
	if n := eval[string](t, ctx, `document.querySelector('#fields .field-count').textContent`); n != "103" {
		t.Errorf("top field count = %q, want 103", n)
	}
	// The side-by-side view marks the differing line on both sides.
	waitFor(t, ctx, "the side-by-side sample", `document.querySelectorAll('.sbs .side .line.diff').length >= 2`)
	oldLine := eval[string](t, ctx, `document.querySelector('.sbs .side.old .line.diff').textContent`)
	newLine := eval[string](t, ctx, `document.querySelector('.sbs .side.new .line.diff').textContent`)
	if !strings.Contains(oldLine, `"email"`) || !strings.Contains(newLine, `"email"`) || oldLine == newLine {
		t.Errorf("highlighted lines: old %q new %q", oldLine, newLine)
	}
	// The markup in backend values is on the page as text...
	text := eval[string](t, ctx, `document.querySelector('main').innerText`)
	for _, p := range []string{scriptPayload, `<img src=/xss-probe onerror=\"window.__xss=2\">`} {
		if !strings.Contains(text, p) {
			t.Errorf("payload %s not shown as text", p)
		}
	}
	// ...and never became elements or ran.
	if n := eval[int](t, ctx, `document.querySelectorAll('main script, main img').length`); n != 0 {
		t.Errorf("%d script/img elements in the page body", n)
	}
	if x := eval[bool](t, ctx, `window.__xss === undefined`); !x {
		t.Error("payload ran")
	}
	if n := probes.Load(); n != 0 {
		t.Errorf("the browser fetched the payload's image %d times", n)
	}
	screenshot(t, ctx, "route")

	// Rules page.
	if err := chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/#/rules")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the rules version", `document.querySelector('#rules-version .v')?.textContent === 'abc123'`)
	screenshot(t, ctx, "rules")
}
