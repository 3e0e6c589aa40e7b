// cutover dashboard. Every string that came from a backend or the API is
// put in the page as text (textContent, text nodes, setAttribute on safe
// attributes), never as markup: a "<script>" in a JSON value is shown, not
// run. The page's CSP forbids inline script as a second line of defence.
'use strict';
(function () {
  const REFRESH_MS = 5000;
  const main = document.getElementById('main');
  const statusEl = document.getElementById('status');
  // state survives the 5 s refresh: chart span, picked samples, open panels.
  const state = { span: '1h', picked: {}, open: new Set() };
  let charts = [];
  let renderSeq = 0;

  // el builds an element; attrs are set with setAttribute (never on*),
  // children are nodes or strings (which become text nodes).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) throw new Error('no inline handlers');
      e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  // Rates are cut, not rounded: 99.996 % shows as 99.99 %, never as 100 %.
  function pct(x, digits = 2) {
    if (x == null) return '–';
    const f = Math.pow(10, digits);
    return (Math.floor(x * 100 * f) / f).toFixed(digits) + ' %';
  }
  function num(n) { return n == null ? '–' : Number(n).toLocaleString('en-US'); }
  function ms(x) { return x == null || x === 0 ? '–' : (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0)) + ' ms'; }
  function signedPct(x) { return x == null ? '–' : (x >= 0 ? '+' : '') + (x * 100).toFixed(1) + ' %'; }
  function ago(sec) {
    if (sec == null) return '–';
    if (sec < 90) return Math.round(sec) + ' s';
    if (sec < 5400) return Math.round(sec / 60) + ' min';
    if (sec < 172800) return (sec / 3600).toFixed(1) + ' h';
    return (sec / 86400).toFixed(1) + ' d';
  }
  function when(t) { return t ? new Date(t).toLocaleString() : '–'; }
  const STATUS_TEXT = { ready: 'ready', not_ready: 'not ready', insufficient_data: 'insufficient data' };
  function badge(ready) {
    return el('span', { class: 'badge ' + ready.status, 'data-status': ready.status }, STATUS_TEXT[ready.status] || ready.status);
  }

  async function getJSON(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) {
      let msg = res.status + ' ' + res.statusText;
      try { msg = (await res.json()).error || msg; } catch (e) { /* keep the status */ }
      throw new Error(msg);
    }
    return res.json();
  }

  function destroyCharts() {
    for (const c of charts) c.destroy();
    charts = [];
  }

  function setStatus(text, bad) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', !!bad);
  }

  function route() {
    const h = location.hash.replace(/^#\/?/, '');
    if (h.startsWith('route/')) return { page: 'route', name: decodeURIComponent(h.slice(6)) };
    if (h === 'rules') return { page: 'rules' };
    if (h === 'held') return { page: 'held' };
    return { page: 'overview' };
  }

  async function render() {
    const seq = ++renderSeq;
    const r = route();
    document.getElementById('nav-overview').classList.toggle('active', r.page === 'overview');
    document.getElementById('nav-rules').classList.toggle('active', r.page === 'rules');
    document.getElementById('nav-held').classList.toggle('active', r.page === 'held');
    try {
      let view;
      if (r.page === 'route') view = await routePage(r.name);
      else if (r.page === 'rules') view = await rulesPage();
      else if (r.page === 'held') view = await heldPage();
      else view = await overviewPage();
      if (seq !== renderSeq) return; // a newer render started meanwhile
      const scroll = window.scrollY;
      destroyCharts();
      main.replaceChildren(view.node);
      for (const draw of view.charts || []) charts.push(draw());
      window.scrollTo(0, scroll);
      setStatus('updated ' + new Date().toLocaleTimeString());
    } catch (e) {
      if (seq !== renderSeq) return;
      setStatus('error: ' + e.message, true);
      if (!main.firstChild) main.replaceChildren(el('p', { class: 'error' }, 'Could not load: ' + e.message));
    }
  }

  // ---- overview -------------------------------------------------------

  const RANK = { not_ready: 0, insufficient_data: 1, ready: 2 };
  function worstFirst(a, b) {
    const ra = RANK[a.ready.status] ?? 0, rb = RANK[b.ready.status] ?? 0;
    if (ra !== rb) return ra - rb;
    const ma = a.reads.match_rate ?? 2, mb = b.reads.match_rate ?? 2;
    if (ma !== mb) return ma - mb;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  }

  function tile(k, v, attrs) {
    return el('div', Object.assign({ class: 'tile' }, attrs || {}), el('div', { class: 'k' }, k), el('div', { class: 'v' }, v));
  }

  async function overviewPage() {
    const [routes, rules] = await Promise.all([getJSON('api/v1/routes'), getJSON('api/v1/rules')]);
    routes.sort(worstFirst);
    const count = s => routes.filter(r => r.ready.status === s).length;
    let pending = 0, givenUp = 0, toVerify = 0, oldest = null;
    for (const r of routes) {
      pending += r.writes.pending_retries;
      givenUp += r.writes.given_up;
      toVerify += r.writes.to_verify || 0;
      const age = r.writes.oldest_pending_age_seconds;
      if (age != null && (oldest == null || age > oldest)) oldest = age;
    }
    const drawers = [];
    const summary = el('div', { class: 'summary' },
      tile('ready', num(count('ready')), { id: 'sum-ready' }),
      tile('not ready', num(count('not_ready')), { id: 'sum-not-ready' }),
      tile('insufficient data', num(count('insufficient_data')), { id: 'sum-insufficient' }),
      tile('retry queue', num(pending), { id: 'sum-queue' }),
      tile('oldest queued', ago(oldest), { id: 'sum-oldest' }),
      tile('given up', el('a', { href: '#/held' }, num(givenUp)), { id: 'sum-given-up' }),
      tile('to verify', el('a', { href: '#/held' }, num(toVerify)), { id: 'sum-to-verify' }),
      tile('rules', rules.version || '–', { id: 'sum-rules' }));
    const parts = [el('h1', {}, 'Routes'), summary];
    // Whose numbers these are: the fleet's (Prometheus, dashboard.prometheus_url)
    // or this replica's, with the reason when Prometheus could not answer.
    const scope = routes.length ? routes[0].scope : null;
    if (scope && scope.fleet && scope.down) parts.push(el('p', { class: 'error', id: 'scope' }, 'Replicas: ' + num(scope.replicas) + ' summed by Prometheus, ' + num(scope.down) + ' it cannot scrape and whose numbers are missing: no verdict until they are back.'));
    else if (scope && scope.fleet) parts.push(el('p', { class: 'muted', id: 'scope' }, 'All replicas: ' + num(scope.replicas) + ' summed by Prometheus. Samples and fields are this replica\'s.'));
    else if (scope && scope.error) parts.push(el('p', { class: 'error', id: 'scope' }, 'This replica only: Prometheus gave no fleet view (' + scope.error + '); no verdict until it answers.'));
    if (rules.last_error) parts.push(el('p', { class: 'error', id: 'rules-error' }, 'Last reload failed (the previous rules stay in force): ' + rules.last_error));

    const head = el('tr', {}, ['Route', 'Phase', 'Verdict', 'Match rate', 'Last hour', 'Last 60 min', 'Compared', 'Secondary writes', 'Retry queue', 'p99 old → new', 'Why']
      .map((h, i) => el('th', { class: [3, 4, 6].includes(i) ? 'num' : null }, h)));
    const rows = routes.map(r => {
      const spark = el('div', { class: 'spark' });
      drawers.push(() => sparkline(spark, r.sparkline, r.ready.checks.find(c => c.name === 'match_rate')?.threshold));
      const w = r.writes;
      const writes = w.secondary_attempted === 0 ? el('span', { class: 'muted' }, 'none') :
        el('span', {}, pct(w.first_attempt_rate) + ' first', el('br'), el('span', { class: 'small muted' }, pct(w.eventual_rate) + ' eventual, ' + num(w.secondary_attempted) + ' writes'));
      const queue = el('span', { class: w.unresolved > 0 ? 'bad' : null }, num(w.pending_retries) + ' queued',
        w.given_up ? el('span', {}, ', ' + num(w.given_up) + ' given up') : null,
        w.oldest_pending_age_seconds != null ? el('span', { class: 'small muted' }, el('br'), 'oldest ' + ago(w.oldest_pending_age_seconds)) : null);
      const lat = r.latency.old.count === 0 ? el('span', { class: 'muted' }, '–') :
        el('span', { class: r.ready.checks.find(c => c.name === 'p99_latency_increase' && !c.pass) ? 'bad' : null },
          ms(r.latency.old.p99_ms) + ' → ' + ms(r.latency.new.p99_ms), el('br'), el('span', { class: 'small muted' }, signedPct(r.latency.p99_increase)));
      const why = r.ready.reasons.length === 0 ? el('span', { class: 'good small' }, 'every threshold met') :
        el('ul', { class: 'reasons small' }, r.ready.reasons.map(x => el('li', {}, x)));
      return el('tr', { class: 'route-row', 'data-route': r.name },
        el('td', {}, el('a', { href: '#/route/' + encodeURIComponent(r.name), class: 'route-link' }, r.name),
          r.overrides && r.overrides.length ? el('div', { class: 'small muted' }, r.overrides.map(o => o.override + ': ' + (STATUS_TEXT[o.ready.status] || o.ready.status)).join(', ')) : null),
        el('td', {}, r.phase || '–'),
        el('td', {}, badge(r.ready)),
        el('td', { class: 'num match-rate' }, pct(r.reads.match_rate), el('div', { class: 'small muted' }, num(r.reads.matched) + ' / ' + num(r.reads.compared))),
        el('td', { class: 'num' }, pct(r.reads.windows['1h'].match_rate)),
        el('td', {}, spark),
        el('td', { class: 'num' }, num(r.reads.compared), el('div', { class: 'small muted' }, num(r.reads.skipped) + ' skipped, ' + num(r.reads.errors) + ' errors, ' + num(r.reads.pending) + ' pending')),
        el('td', {}, writes),
        el('td', {}, queue),
        el('td', {}, lat),
        el('td', {}, why));
    });
    const table = routes.length ? el('table', { id: 'routes' }, el('thead', {}, head), el('tbody', {}, rows)) :
      el('p', { class: 'empty' }, 'No routes yet: configure routes or send traffic through the gateway.');
    parts.push(table);
    return { node: el('div', {}, parts), charts: drawers };
  }

  function sparkline(node, values, threshold) {
    const xs = values.map((_, i) => i), ys = values.map(v => v == null ? null : v * 100);
    let lo = Math.min(100, ...ys.filter(v => v != null));
    if (threshold != null) lo = Math.min(lo, threshold * 100);
    lo = Math.max(0, lo - (100 - lo) * 0.2 - 0.05);
    return new uPlot({
      width: 140, height: 32, cursor: { show: false }, legend: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      // Half a minute of margin each side, so the current minute's point is
      // not cut at the edge.
      scales: { x: { time: false, range: [-0.5, values.length - 0.5] }, y: { range: [lo, 100] } },
      series: [{}, { stroke: '#1a56a8', width: 1.5, spanGaps: false, points: { show: ys.filter(v => v != null).length < 10, size: 4 } }],
    }, [xs, ys], node);
  }

  // ---- route page -----------------------------------------------------

  const SPANS = ['1h', '24h', '7d', '30d'];

  async function routePage(name) {
    const q = encodeURIComponent(name);
    const [routes, fields, diffs, hist] = await Promise.all([
      getJSON('api/v1/routes'), getJSON('api/v1/fields?limit=25&route=' + q),
      getJSON('api/v1/diffs?route=' + q), getJSON('api/v1/history?span=' + state.span + '&route=' + q)]);
    const r = routes.find(x => x.name === name);
    if (!r) throw new Error('no such route');
    const drawers = [];
    const parts = [el('p', { class: 'small' }, el('a', { href: '#/' }, '← all routes')),
      el('h1', { id: 'route-title' }, r.name, ' ', badge(r.ready), ' ', el('span', { class: 'muted small' }, r.phase))];
    if (r.ready.reasons.length) parts.push(el('ul', { class: 'reasons', id: 'reasons' }, r.ready.reasons.map(x => el('li', {}, x))));

    const wins = r.reads.windows;
    parts.push(el('div', { class: 'summary' },
      tile('match rate', pct(r.reads.match_rate), { id: 'route-match-rate' }),
      tile('last 5 min', pct(wins['5m'].match_rate)), tile('last hour', pct(wins['1h'].match_rate)), tile('last day', pct(wins['24h'].match_rate)),
      tile('compared', num(r.reads.compared)), tile('mismatched', num(r.reads.mismatched)),
      tile('skipped', num(r.reads.skipped)), tile('errors', num(r.reads.errors)), tile('pending', num(r.reads.pending)),
      tile('writes first / eventual', pct(r.writes.first_attempt_rate) + ' / ' + pct(r.writes.eventual_rate)),
      tile('queued / given up', num(r.writes.pending_retries) + ' / ' + num(r.writes.given_up)),
      tile('p99 old → new', ms(r.latency.old.p99_ms) + ' → ' + ms(r.latency.new.p99_ms))));

    const notCompared = notComparedList(r.reads.reasons);
    if (notCompared) parts.push(notCompared);

    parts.push(el('h2', {}, 'Readiness'), checksTable(r.ready.checks));

    // Match rate over time against the threshold.
    const tabs = el('div', { class: 'tabs' }, SPANS.map(s => {
      const b = el('button', { type: 'button', class: s === state.span ? 'active' : null }, s);
      b.addEventListener('click', () => { state.span = s; render(); });
      return b;
    }));
    const chart = el('div', { class: 'chart', id: 'chart' });
    parts.push(el('h2', {}, 'Match rate over time'), el('div', { class: 'card' }, tabs, chart));
    drawers.push(() => rateChart(chart, hist));

    if (r.overrides && r.overrides.length) {
      parts.push(el('h2', {}, 'Overrides'), el('table', {},
        el('thead', {}, el('tr', {}, ['Override', 'Phase', 'Verdict', 'Match rate', 'Compared', 'Writes first attempt', 'Unresolved writes', 'Why not ready'].map(h => el('th', {}, h)))),
        el('tbody', {}, r.overrides.map(o => el('tr', { 'data-override': o.override }, el('td', {}, o.override), el('td', {}, o.phase || '–'), el('td', {}, badge(o.ready)),
          el('td', { class: 'num' }, pct(o.reads.match_rate)), el('td', { class: 'num' }, num(o.reads.compared)), el('td', { class: 'num' }, pct(o.writes.first_attempt_rate)),
          el('td', { class: 'num' }, o.writes.unresolved ? el('a', { href: '#/held' }, num(o.writes.unresolved)) : num(o.writes.unresolved)),
          el('td', { class: 'small' }, (o.ready.reasons || []).join('; ')))))));
    }

    parts.push(el('h2', {}, 'Differing fields'), fieldsTable(fields));
    parts.push(el('h2', {}, 'Mismatch samples by shape'));
    if (!diffs.groups.length) parts.push(el('p', { class: 'empty' }, 'No mismatches recorded.'));
    for (const g of diffs.groups) parts.push(groupCard(g));
    if (diffs.overflow_groups) parts.push(el('p', { class: 'muted small' }, num(diffs.overflow_groups) + ' further mismatches had shapes beyond the group cap (counted, not sampled).'));
    return { node: el('div', {}, parts), charts: drawers };
  }

  // What a reason not compared says to do, for the reasons an operator
  // acts on; the others are shown by name.
  const REASON_HINTS = {
    'skipped/sampled_out': "the route's sample: setting",
    'skipped/busy': 'every shadow worker was taken: raise shadow.workers',
    'skipped/secondary_slow': 'new is far slower than old: see shadow.lag_factor and the latency check',
    'skipped/breaker_open': 'the secondary is failing; its breaker is open',
    'skipped/phase': 'the phase compares no reads',
    'skipped/stream': 'event streams are not compared',
    'skipped/upgrade': 'protocol switches (WebSocket) are not compared',
    'error/secondary_failed': 'the secondary did not answer',
    'error/primary_failed': 'the primary did not answer',
  };

  // notComparedList lists the reads not compared by reason, most first;
  // null when every read was compared.
  function notComparedList(reasons) {
    const rows = Object.entries(reasons || {}).filter(([k]) => k.startsWith('skipped/') || k.startsWith('error/')).sort((a, b) => b[1] - a[1]);
    if (!rows.length) return null;
    return el('div', { id: 'not-compared' }, el('h2', {}, 'Not compared'), el('ul', { class: 'reasons small' },
      rows.map(([k, n]) => el('li', { 'data-reason': k }, num(n) + ' ' + k + (REASON_HINTS[k] ? ': ' + REASON_HINTS[k] : '')))));
  }

  function checksTable(checks) {
    return el('table', { class: 'checks', id: 'checks' },
      el('thead', {}, el('tr', {}, ['Check', '', 'Observed', 'Lower bound (95 %)', 'Threshold', 'Detail'].map(h => el('th', {}, h)))),
      el('tbody', {}, checks.map(c => {
        const rate = c.name !== 'min_samples' && c.name !== 'unresolved_retries';
        const fmt = v => v == null ? '–' : c.name === 'p99_latency_increase' ? signedPct(v) : rate ? pct(v, 3) : num(v);
        return el('tr', {}, el('td', {}, c.name), el('td', { class: c.pass ? 'pass' : 'fail' }, c.pass ? 'pass' : 'fail'),
          el('td', { class: 'num' }, fmt(c.value)), el('td', { class: 'num' }, c.bound == null ? '–' : pct(c.bound, 3)),
          el('td', { class: 'num' }, c.name === 'p99_latency_increase' ? '+' + pct(c.threshold, 1) : rate ? pct(c.threshold, 3) : num(c.threshold)),
          el('td', { class: 'small' }, c.detail));
      })));
  }

  function rateChart(node, hist) {
    const xs = hist.points.map(p => Date.parse(p.t) / 1000);
    const ys = hist.points.map(p => p.match_rate == null ? null : p.match_rate * 100);
    const th = hist.points.map(() => hist.threshold * 100);
    const seen = ys.filter(v => v != null);
    let lo = Math.min(hist.threshold * 100, ...seen);
    lo = Math.max(0, lo - (100 - lo) * 0.1 - 0.01);
    const width = Math.max(320, node.clientWidth || 800);
    return new uPlot({
      width, height: 260,
      scales: { y: { range: [lo, 100] } },
      axes: [{}, { label: 'match rate %', size: 60 }],
      series: [{},
        // Points show where minutes with data are few and far apart: a lone
        // minute has no neighbour to draw a line to.
        { label: 'match rate', stroke: '#1a56a8', width: 2, spanGaps: false, points: { show: seen.length < 60, size: 6 } },
        { label: 'threshold', stroke: '#b3261e', width: 1, dash: [6, 4], points: { show: false } }],
    }, [xs, ys, th], node);
  }

  function fieldsTable(fv) {
    if (!fv.fields.length) return el('p', { class: 'empty' }, 'No differing fields.');
    const rows = fv.fields.map(f => el('tr', { class: 'field-row' },
      el('td', { class: 'json field-path' }, f.path),
      el('td', { class: 'num field-count' }, num(f.count)),
      el('td', { class: 'num' }, pct(f.rate, 3)),
      el('td', { class: 'num' }, f.noise_rate == null ? '–' : pct(f.noise_rate, 3)),
      el('td', {}, f.noisy ? el('span', { class: 'badge insufficient_data' }, 'noise') : ''),
      el('td', { class: 'small' }, Object.entries(f.kinds || {}).map(([k, v]) => k + ' ' + num(v)).join(', '))));
    if (fv.overflow.paths) rows.push(el('tr', {}, el('td', { class: 'muted' }, '(' + num(fv.overflow.paths) + ' more paths)'), el('td', { class: 'num' }, num(fv.overflow.count)), el('td'), el('td'), el('td'), el('td')));
    return el('table', { id: 'fields' },
      el('thead', {}, el('tr', {}, ['Path', 'Count', 'Diff rate', 'Noise rate', '', 'Kinds'].map(h => el('th', {}, h)))),
      el('tbody', {}, rows));
  }

  function groupCard(g) {
    const card = el('div', { class: 'card group', 'data-fingerprint': g.fingerprint });
    card.appendChild(el('div', { class: 'group-head' }, el('strong', {}, num(g.count) + ' mismatches'), g.write ? el('span', { class: 'badge insufficient_data' }, 'write') : null,
      el('span', { class: 'small muted' }, 'first ' + when(g.first_seen) + ' · last ' + when(g.last_seen) + ' · shape ' + g.fingerprint)));
    card.appendChild(el('ul', { class: 'paths' }, g.paths.map(p => el('li', {}, el('code', {}, p.path), ' ', el('span', { class: 'muted small' }, p.kind)))));
    if (g.suggested_rule) card.appendChild(keepOpen('rule:' + g.fingerprint, el('details', {}, el('summary', {}, 'Suggested rule (review before use)'), el('pre', { class: 'rule' }, g.suggested_rule))));
    if (!g.samples.length) return card;
    const pick = Math.min(state.picked[g.fingerprint] || 0, g.samples.length - 1);
    const tabs = el('div', { class: 'tabs' }, g.samples.map((s, i) => {
      const b = el('button', { type: 'button', class: i === pick ? 'active' : null }, 'sample ' + (i + 1) + ' · ' + new Date(s.at).toLocaleTimeString());
      b.addEventListener('click', () => { state.picked[g.fingerprint] = i; card.replaceWith(groupCard(g)); });
      return b;
    }));
    card.appendChild(tabs);
    card.appendChild(sampleView(g.samples[pick]));
    return card;
  }

  // keepOpen remembers whether a <details> panel is open across refreshes.
  function keepOpen(key, d) {
    d.open = state.open.has(key);
    d.addEventListener('toggle', () => { if (d.open) state.open.add(key); else state.open.delete(key); });
    return d;
  }

  function sampleView(s) {
    const box = el('div', { class: 'sample' });
    box.appendChild(el('p', {}, el('code', { class: 'request-line' }, s.request.method + ' ' + s.request.target),
      s.override ? el('span', { class: 'small muted' }, ' · override ' + s.override) : null,
      el('span', { class: 'small muted' }, ' · primary ' + (s.primary || 'old'))));
    if (s.request.header && Object.keys(s.request.header).length) {
      box.appendChild(keepOpen('headers', el('details', {}, el('summary', { class: 'small' }, 'request headers (redacted)'),
        el('pre', { class: 'rule' }, Object.entries(s.request.header).map(([k, vs]) => vs.map(v => k + ': ' + v).join('\n')).join('\n')))));
    }
    box.appendChild(el('table', { class: 'difftable' },
      el('thead', {}, el('tr', {}, ['Path', 'Kind', 'Old', 'New'].map(h => el('th', {}, h)))),
      el('tbody', {}, s.diffs.map(d => el('tr', {}, el('td', {}, d.path), el('td', {}, d.kind), el('td', { class: 'diff-old' }, d.old ?? ''), el('td', { class: 'diff-new' }, d.new ?? ''))))));
    if (s.diffs_omitted) box.appendChild(el('p', { class: 'small muted' }, num(s.diffs_omitted) + ' more differences not kept'));
    const marks = new Map(s.diffs.map(d => [d.path, d.kind]));
    box.appendChild(el('div', { class: 'sbs' }, side('old', s.old, marks), side('new', s.new, marks)));
    return box;
  }

  function side(which, ans, marks) {
    const head = el('h3', {}, which + ' · ' + ans.status + ' · ' + num(ans.size) + ' bytes' + (ans.truncated ? ' (cut)' : ''));
    let body;
    if (ans.withheld) body = el('p', { class: 'empty' }, 'Body withheld: it is not JSON, so redaction rules could not be applied.');
    else {
      let tree = null;
      try { tree = parseJSON(ans.body); } catch (e) { tree = null; }
      body = tree === null ? el('pre', { class: 'json' }, ans.body) : jsonView(tree, marks, which);
    }
    return el('div', { class: 'side ' + which, 'data-side': which }, head, body);
  }

  // ---- JSON, losslessly ------------------------------------------------
  // JSON.parse would turn 9007199254740993 into ...992 and keep only the
  // last of duplicate keys: the view would lie about what a backend sent.
  // This parser keeps number text as written and every key in order.

  function parseJSON(text) {
    let i = 0;
    const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
    const fail = () => { throw new Error('bad JSON at ' + i); };
    function str() {
      let out = '';
      i++;
      for (;;) {
        if (i >= text.length) fail();
        const c = text[i++];
        if (c === '"') return out;
        if (c === '\\') {
          const e = text[i++];
          if (e === 'u') { out += String.fromCharCode(parseInt(text.slice(i, i + 4), 16)); i += 4; }
          else out += ({ b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' })[e] ?? e;
        } else out += c;
      }
    }
    function val(depth) {
      if (depth > 200) fail();
      ws();
      const c = text[i];
      if (c === '{') {
        i++; const entries = []; ws();
        if (text[i] === '}') { i++; return { t: 'obj', entries }; }
        for (;;) {
          ws(); if (text[i] !== '"') fail();
          const k = str(); ws(); if (text[i++] !== ':') fail();
          entries.push([k, val(depth + 1)]); ws();
          if (text[i] === ',') { i++; continue; }
          if (text[i] === '}') { i++; return { t: 'obj', entries }; }
          fail();
        }
      }
      if (c === '[') {
        i++; const items = []; ws();
        if (text[i] === ']') { i++; return { t: 'arr', items }; }
        for (;;) {
          items.push(val(depth + 1)); ws();
          if (text[i] === ',') { i++; continue; }
          if (text[i] === ']') { i++; return { t: 'arr', items }; }
          fail();
        }
      }
      if (c === '"') return { t: 'str', v: str() };
      const m = /^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      if (!m) fail();
      i += m[0].length;
      return { t: /\d/.test(m[0][m[0].length - 1]) ? 'num' : 'lit', raw: m[0] };
    }
    const v = val(0); ws();
    if (i !== text.length) fail();
    return v;
  }

  // Normalized paths as RFC 9535 writes them, the form the API uses.
  function childPath(p, key) {
    if (typeof key === 'number') return p + '[' + key + ']';
    const esc = key.replace(/[\\']/g, c => '\\' + c).replace(/[\u0000-\u001f]/g, c => {
      const m = { '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' }[c];
      return m || '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
    });
    return p + "['" + esc + "']";
  }

  const MAX_LINES = 4000;
  function jsonView(tree, marks, which) {
    const pre = el('pre', { class: 'json' });
    let lines = 0;
    function line(depth, parts, mark, path) {
      if (lines++ > MAX_LINES) return;
      const ln = el('span', { class: 'line' + (mark ? ' diff ' + mark : ''), 'data-path': path });
      ln.appendChild(document.createTextNode('  '.repeat(depth)));
      for (const p of parts) ln.appendChild(typeof p === 'string' ? document.createTextNode(p) : p);
      pre.appendChild(ln);
    }
    function scalar(n) {
      if (n.t === 'str') return el('span', { class: 'str' }, JSON.stringify(n.v));
      return el('span', { class: n.t }, n.raw);
    }
    function walk(n, path, depth, key, comma, inherited) {
      const own = marks.get(path);
      // Missing lives only on the old side, extra only on the new one.
      const mark = own && !((own === 'missing' && which === 'new') || (own === 'extra' && which === 'old')) ? own : inherited;
      const k = key == null ? [] : [typeof key === 'number' ? '' : el('span', { class: 'key' }, JSON.stringify(key)), typeof key === 'number' ? '' : ': '];
      const end = comma ? ',' : '';
      if (n.t === 'obj' || n.t === 'arr') {
        const kids = n.t === 'obj' ? n.entries : n.items.map((v, i) => [i, v]);
        const [open, close] = n.t === 'obj' ? ['{', '}'] : ['[', ']'];
        if (!kids.length) { line(depth, [...k, open + close + end], mark, path); return; }
        line(depth, [...k, open], mark, path);
        kids.forEach(([ck, cv], i) => walk(cv, childPath(path, ck), depth + 1, n.t === 'obj' ? ck : i, i < kids.length - 1, mark));
        line(depth, [close + end], mark, path);
        return;
      }
      line(depth, [...k, scalar(n), end], mark, path);
    }
    walk(tree, '$', 0, null, false, null);
    if (lines > MAX_LINES) pre.appendChild(el('span', { class: 'muted' }, '… cut at ' + MAX_LINES + ' lines'));
    return pre;
  }

  // ---- held writes -----------------------------------------------------

  // act posts an operator action on a held write, then redraws.
  async function act(id, action, query) {
    try {
      const res = await fetch('api/v1/held/' + encodeURIComponent(id) + '/' + action + (query || ''), { method: 'POST', cache: 'no-store' });
      if (!res.ok) {
        let msg = res.status + ' ' + res.statusText;
        try { msg = (await res.json()).error || msg; } catch (e) { /* keep the status */ }
        throw new Error(msg);
      }
      // A replay is queued (202), not yet delivered.
      setStatus(action + ' of write ' + id + (res.status === 202 ? ' queued' : ' done'));
    } catch (e) {
      setStatus(action + ' of write ' + id + ' failed: ' + e.message, true);
    }
    render();
  }

  // A replay of a write a later one overtook asks again, and is forced:
  // the server refuses it otherwise.
  function actionButton(w, action, label) {
    const b = el('button', { type: 'button', class: 'act', 'data-id': w.id, 'data-action': action }, label);
    const over = action === 'replay' && w.superseded;
    b.addEventListener('click', () => {
      let q = label + ' write ' + w.id + ' (' + w.method + ' ' + w.target + ')?';
      if (over) q = 'A later write of ' + w.resource + ' reached ' + w.backend + ' after this one was held (' + when(w.superseded) +
        '): replayed, it puts the older value back over the newer one. ' + q;
      if (window.confirm(q)) act(w.id, action, over ? '?force=true' : '');
    });
    return b;
  }

  async function heldPage() {
    const page = await getJSON('api/v1/held?limit=500');
    const parts = [el('h1', {}, 'Held writes'), el('p', { class: 'muted' },
      'Writes the secondary did not get and no retry will deliver: given up after their retries, or held to verify because ' +
      'the primary\'s outcome is unknown (timeout, reset, client gone, gateway stopped). Replay queues one again behind the ' +
      'writes queued for its resource, with its idempotency key; discard forgets it once repaired by hand.')];
    parts.push(page.writes.length ? el('table', { id: 'held' },
      el('thead', {}, el('tr', {}, ['Id', 'Kind', 'Route (override)', 'Request', 'Resource', 'Held', 'Attempts', 'Why', ''].map(h => el('th', {}, h)))),
      el('tbody', {}, page.writes.map(w => el('tr', { 'data-id': w.id },
        el('td', { class: 'num' }, w.id), el('td', {}, w.kind === 'verify' ? 'to verify' : 'given up'),
        el('td', {}, w.override ? w.route + ' (' + w.override + ')' : w.route), el('td', { class: 'json' }, w.method + ' ' + w.target), el('td', { class: 'json' }, w.resource),
        el('td', {}, when(w.held)), el('td', { class: 'num' }, num(w.attempts)),
        el('td', {}, [w.superseded ? 'superseded: a later write reached ' + w.backend + ' ' + when(w.superseded) : null,
          w.reason, w.status ? 'client got ' + w.status : null, w.last_error].filter(Boolean).join('; ')),
        el('td', {}, w.replayable ? actionButton(w, 'replay', 'Replay') : null, ' ', actionButton(w, 'discard', 'Discard')))))) :
      el('p', { class: 'empty' }, 'No held writes.'));
    if (page.next) parts.push(el('p', { class: 'muted' }, 'More in api/v1/held?after=' + page.next));
    return { node: el('div', {}, parts) };
  }

  // ---- rules page ------------------------------------------------------

  async function rulesPage() {
    const st = await getJSON('api/v1/rules');
    const parts = [el('h1', {}, 'Rules'), el('div', { class: 'summary' },
      tile('version', st.version || '–', { id: 'rules-version' }), tile('file', st.source || '–'), tile('loaded', when(st.loaded_at)),
      tile('reloads ok / refused', num(st.reloads.ok || 0) + ' / ' + num(st.reloads.error || 0)))];
    if (st.last_error) parts.push(el('div', { class: 'card' }, el('strong', { class: 'error' }, 'Last reload failed ' + when(st.last_error_at) + '; the rules above stay in force.'), el('pre', { class: 'rule', id: 'rules-last-error' }, st.last_error)));
    if (st.restart_pending && st.restart_pending.length) parts.push(el('div', { class: 'card', id: 'restart-pending' },
      el('strong', {}, 'Waiting for a restart: '), 'the file changes settings read only at start; the process still runs with the old values of ' + st.restart_pending.join('; ') + '.'));
    parts.push(el('h2', {}, 'Routes'), st.routes.length ? el('table', {},
      el('thead', {}, el('tr', {}, ['Route', 'Match', 'Phase', 'Sample', 'Overrides'].map(h => el('th', {}, h)))),
      el('tbody', {}, st.routes.map(r => el('tr', {}, el('td', {}, el('a', { href: '#/route/' + encodeURIComponent(r.name) }, r.name)),
        el('td', { class: 'json' }, (r.methods && r.methods.length ? r.methods.join(',') + ' ' : '') + r.path), el('td', {}, r.phase),
        el('td', { class: 'num' }, pct(r.sample, 0)), el('td', {}, (r.overrides || []).map(o => o.name + ' → ' + o.phase).join(', ')))))) :
      el('p', { class: 'empty' }, 'No routes configured.'));
    parts.push(el('h2', {}, 'Compare rules and their hits'), st.rules.length ? el('table', { id: 'rule-hits' },
      el('thead', {}, el('tr', {}, ['Route', 'Kind', 'Rule', 'Hits'].map(h => el('th', { class: h === 'Hits' ? 'num' : null }, h)))),
      el('tbody', {}, st.rules.map(h => el('tr', {}, el('td', {}, h.route || '(defaults)'), el('td', {}, h.kind), el('td', { class: 'json' }, h.rule), el('td', { class: 'num' }, num(h.hits)))))) :
      el('p', { class: 'empty' }, 'No compare rules.'));
    return { node: el('div', {}, parts) };
  }

  window.addEventListener('hashchange', () => { window.scrollTo(0, 0); render(); });
  setInterval(() => { if (!document.hidden) render(); }, REFRESH_MS);
  render();
})();
