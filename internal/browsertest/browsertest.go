// Package browsertest starts a headless Chromium for tests and reads pages
// with it: the dashboard's tests drive the real page in a real browser.
//
// It skips a test when no Chromium is installed, unless
// CUTOVER_REQUIRE_BROWSER is set (CI sets it), which turns that into a
// failure.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Find returns the browser to drive, or "" when there is none.
// CUTOVER_CHROMIUM names one explicitly.
func Find() string {
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

// New starts a headless Chromium with a fresh profile and returns a tab's
// context; the browser stops when the test ends.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Find()
	if path == "" {
		if os.Getenv("CUTOVER_REQUIRE_BROWSER") != "" {
			t.Fatal("CUTOVER_REQUIRE_BROWSER is set but no Chromium was found (apt-get install chromium)")
		}
		t.Skip("no Chromium installed; set CUTOVER_REQUIRE_BROWSER=1 to make this a failure")
	}
	// Not t.TempDir: its path holds the test's name, and Chromium's socket
	// in it must fit a Unix socket's 108 bytes.
	scratch, err := os.MkdirTemp("", "chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scratch) })
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in a container has no user namespace sandbox
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its own scratch (org.chromium.Chromium.*) goes when the test ends.
		chromedp.Env("TMPDIR="+scratch),
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

// Dir is where browser tests save what they saw: $CUTOVER_SCREENSHOTS, or
// cutover-screenshots in the temporary directory.
func Dir(t testing.TB) string {
	dir := os.Getenv("CUTOVER_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cutover-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves the whole page as Dir/name.png and prints the path.
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 gives PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(Dir(t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	fmt.Fprintf(os.Stderr, "screenshot: %s\n", path)
	return path
}

// Navigate opens url in the tab.
func Navigate(t testing.TB, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// WaitFor polls a page predicate until it is truthy, for at most 15 s, and
// fails the test with the page's text otherwise.
func WaitFor(t testing.TB, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

// Eval evaluates js in the page and decodes its value.
func Eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}
