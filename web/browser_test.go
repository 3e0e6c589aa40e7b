package web_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/browsertest"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

const (
	scriptPayload = `<script>window.__xss=1</script>`
	imgPayload    = `<img src=/xss-probe onerror="window.__xss=2">`
)

// TestDashboardInABrowser drives the real dashboard in Chromium over a
// store carrying 900 matches and 100 mismatches, some of whose values are
// markup an attacker could make a backend return.
func TestDashboardInABrowser(t *testing.T) {
	ctx := browsertest.New(t)
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
	browsertest.Navigate(t, ctx, f.srv.URL+"/")
	browsertest.WaitFor(t, ctx, "the user row", `!!document.querySelector('tr.route-row[data-route="user"] .badge')`)
	browsertest.WaitFor(t, ctx, "the sparkline", `!!document.querySelector('tr.route-row[data-route="user"] .spark canvas')`)
	rate := browsertest.Eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="user"] .match-rate').firstChild.textContent`)
	// 900 of 1003 compared (3 more mismatches carry the payloads).
	if rate != "89.73 %" {
		t.Errorf("overview match rate = %q, want 89.73 %% (900/1003, cut not rounded)", rate)
	}
	if b := browsertest.Eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="user"] .badge').textContent`); b != "not ready" {
		t.Errorf("user badge = %q", b)
	}
	if b := browsertest.Eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="orders"] .badge').dataset.status`); b != "insufficient_data" {
		t.Errorf("orders badge = %q", b)
	}
	// Worst first: the not-ready route is listed before the one still
	// gathering data.
	if first := browsertest.Eval[string](t, ctx, `document.querySelector('tr.route-row').dataset.route`); first != "user" {
		t.Errorf("first row = %q, want user", first)
	}
	browsertest.Screenshot(t, ctx, "overview")

	// Route page. A tenant with a write given up shows it, and why it is
	// not ready.
	f.store.SetQueue("user", stats.QueueState{GivenUp: 1})
	f.store.SetOverrideQueue("user", "acme", stats.QueueState{GivenUp: 1})
	// Reads not compared are listed by reason, most first, with what the
	// reason says to do.
	for i := range 5 {
		reason := stats.ReasonSecondarySlow
		if i == 0 {
			reason = stats.ReasonBusy
		}
		f.store.Read(stats.ReadEvent{Route: "user", Phase: "shadow-read", Primary: "old", Outcome: stats.Skipped, Reason: reason})
	}
	browsertest.Navigate(t, ctx, f.srv.URL+"/#/route/user")
	browsertest.WaitFor(t, ctx, "the fields table", `!!document.querySelector('#fields .field-path')`)
	browsertest.WaitFor(t, ctx, "the chart", `!!document.querySelector('#chart canvas')`)
	if p := browsertest.Eval[string](t, ctx, `document.querySelector('#fields .field-path').textContent`); p != "$['contacts'][*]['email']" {
		t.Errorf("top field = %q", p)
	}
	if n := browsertest.Eval[string](t, ctx, `document.querySelector('#fields .field-count').textContent`); n != "103" {
		t.Errorf("top field count = %q, want 103", n)
	}
	// The side-by-side view marks the differing line on both sides.
	browsertest.WaitFor(t, ctx, "the side-by-side sample", `document.querySelectorAll('.sbs .side .line.diff').length >= 2`)
	oldLine := browsertest.Eval[string](t, ctx, `document.querySelector('.sbs .side.old .line.diff').textContent`)
	newLine := browsertest.Eval[string](t, ctx, `document.querySelector('.sbs .side.new .line.diff').textContent`)
	if !strings.Contains(oldLine, `"email"`) || !strings.Contains(newLine, `"email"`) || oldLine == newLine {
		t.Errorf("highlighted lines: old %q new %q", oldLine, newLine)
	}
	// The markup in backend values is on the page as text...
	text := browsertest.Eval[string](t, ctx, `document.querySelector('main').innerText`)
	for _, p := range []string{scriptPayload, `<img src=/xss-probe onerror=\"window.__xss=2\">`} {
		if !strings.Contains(text, p) {
			t.Errorf("payload %s not shown as text", p)
		}
	}
	// ...and never became elements or ran.
	if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('main script, main img').length`); n != 0 {
		t.Errorf("%d script/img elements in the page body", n)
	}
	if x := browsertest.Eval[bool](t, ctx, `window.__xss === undefined`); !x {
		t.Error("payload ran")
	}
	if n := probes.Load(); n != 0 {
		t.Errorf("the browser fetched the payload's image %d times", n)
	}
	// The suggested rule opens, and stays open when the page refreshes.
	// The old panel is marked so the wait sees the re-rendered one.
	browsertest.Eval[bool](t, ctx, `(document.querySelector('.group details summary').click(), document.querySelector('.group details').dataset.stale = '1', true)`)
	browsertest.Eval[bool](t, ctx, `(window.dispatchEvent(new HashChangeEvent('hashchange')), true)`)
	browsertest.WaitFor(t, ctx, "the suggested rule after a refresh", `(d => d && !d.dataset.stale && d.open)(document.querySelector('.group details'))`)
	if rule := browsertest.Eval[string](t, ctx, `document.querySelector('.group pre.rule').textContent`); !strings.Contains(rule, `- "$.contacts[*].email"`) {
		t.Errorf("suggested rule = %q", rule)
	}
	browsertest.Screenshot(t, ctx, "route")
	if first := browsertest.Eval[string](t, ctx, `document.querySelector('#not-compared li')?.textContent ?? ''`); first != "4 skipped/secondary_slow: new is far slower than old: see shadow.lag_factor and the latency check" {
		t.Errorf("first reason not compared = %q, want the 4 reads skipped as secondary_slow, with what to look at", first)
	}
	if busy := browsertest.Eval[string](t, ctx, `document.querySelector('#not-compared li[data-reason="skipped/busy"]')?.textContent ?? ''`); !strings.HasPrefix(busy, "1 skipped/busy: ") {
		t.Errorf("busy reads = %q", busy)
	}
	if row := browsertest.Eval[string](t, ctx, `document.querySelector('tr[data-override="acme"]')?.innerText ?? ''`); !strings.Contains(row, "acme") ||
		!strings.Contains(row, "given up or to verify") || browsertest.Eval[string](t, ctx, `document.querySelector('tr[data-override="acme"] a[href="#/held"]')?.textContent ?? ''`) != "1" {
		t.Errorf("the override's row = %q, want its one unresolved write, linked, and why it is not ready", row)
	}

	// Rules page.
	browsertest.Navigate(t, ctx, f.srv.URL+"/#/rules")
	browsertest.WaitFor(t, ctx, "the rules version", `document.querySelector('#rules-version .v')?.textContent === 'abc123'`)
	if p := browsertest.Eval[string](t, ctx, `document.querySelector('#restart-pending')?.textContent ?? ''`); !strings.Contains(p, "Waiting for a restart") || !strings.Contains(p, "old values of queue.") {
		t.Errorf("the rules page's restart notice = %q, want queue named", p)
	}
	browsertest.Screenshot(t, ctx, "rules")

	// Held writes: listed as text, replayed with a click.
	f.held.add(web.HeldWrite{ID: 7, Kind: "verify", Route: "user", Method: "PUT", Target: "/users/7?x=" + scriptPayload,
		Resource: "user|7", Reason: "timeout", Status: 504, Replayable: true, Override: "acme"},
		web.HeldWrite{ID: 8, Kind: "gave_up", Route: "user", Method: "PUT", Target: "/users/8", Resource: "user|8", Backend: "new",
			Replayable: true, Superseded: time.Now()})
	browsertest.Navigate(t, ctx, f.srv.URL+"/#/held")
	browsertest.WaitFor(t, ctx, "the held writes", `!!document.querySelector('#held tr[data-id="8"] button[data-action="replay"]')`)
	if text := browsertest.Eval[string](t, ctx, `document.querySelector('#held tr[data-id="7"]').innerText`); !strings.Contains(text, scriptPayload) || !strings.Contains(text, "to verify") || !strings.Contains(text, "user (acme)") {
		t.Errorf("held row = %q", text)
	}
	if text := browsertest.Eval[string](t, ctx, `document.querySelector('#held tr[data-id="8"]').innerText`); !strings.Contains(text, "superseded: a later write reached new") {
		t.Errorf("the overtaken write's row = %q, want it said superseded", text)
	}
	browsertest.Screenshot(t, ctx, "held")
	browsertest.Eval[bool](t, ctx, `(window.confirm = () => true, document.querySelector('#held tr[data-id="7"] button[data-action="replay"]').click(), true)`)
	browsertest.WaitFor(t, ctx, "the list without it", `!document.querySelector('#held tr[data-id="7"]')`)
	// The overtaken one is replayed only when the operator says so again,
	// told what it does; then it is forced.
	browsertest.Eval[bool](t, ctx, `(window.confirm = (q) => (window.__asked = q, true), document.querySelector('#held tr[data-id="8"] button[data-action="replay"]').click(), true)`)
	browsertest.WaitFor(t, ctx, "the list without them", `!!document.querySelector('main .empty')`)
	if asked := browsertest.Eval[string](t, ctx, `window.__asked`); !strings.Contains(asked, "puts the older value back over the newer one") {
		t.Errorf("the confirmation asked %q", asked)
	}
	if got := strings.Join(f.held.actions, ","); got != "replay,replay forced" {
		t.Errorf("actions carried out: %q, want replay,replay forced", got)
	}
	if x := browsertest.Eval[bool](t, ctx, `window.__xss === undefined`); !x {
		t.Error("payload ran")
	}
}
