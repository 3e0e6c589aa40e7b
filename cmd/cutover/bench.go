package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runBench measures cutover against a plain Go reverse proxy (and nginx's
// mirror, when installed) on this machine, in one run, and prints medians
// with ratios to the baseline: issue 7's targets, reproducible by anyone.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", stderr)
	rounds := fs.Int("rounds", 3, "alternating rounds; the table shows medians")
	duration := fs.Duration("duration", 5*time.Second, "length of each measurement")
	conns := fs.Int("conns", 32, "connections of the closed-loop runs")
	sizes := fs.String("sizes", "1024,16384", "answer sizes in bytes, comma separated")
	latency := fs.Bool("latency", true, "also measure latency at a fixed rate of half the baseline's capacity")
	closed := fs.Bool("closed", true, "measure throughput with a fixed number of connections; without it the fixed rate needs --rate")
	rate := fs.Float64("rate", 0, "the fixed rate of the latency runs, in req/s; 0 means half the plain proxy's measured capacity")
	overload := fs.Duration("overload", 60*time.Second, "length of the run against a hanging new backend; 0 skips it")
	nginx := fs.Bool("nginx", true, "also measure nginx with mirror when it is installed")
	queue := fs.Bool("queue", true, "also measure the durable secondary-write queue against an in-memory one")
	queueOutage := fs.Duration("queue-outage", 60*time.Second, "length of the run with the new backend down under write load (queue on disk); 0 skips it")
	onlyQueue := fs.Bool("only-queue", false, "measure only the secondary-write queue")
	backendProcs := fs.Int("backend-procs", 0, "GOMAXPROCS of the JSON backends, which share the cores with the systems measured; 0 leaves Go's default")
	quiet := fs.Duration("quiet", 30*time.Second, "longest wait after each measurement for the machine's CPUs to go 90 % idle; 0 does not wait")
	cutoverEnv := fs.String("cutover-env", "", "extra environment of the cutover processes, space separated, e.g. \"GOGC=off GOMEMLIMIT=400MiB\"")
	if err := parseFlags(fs, args); err != nil {
		return flagsExit(err)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "cutover-bench-")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, stop := signalContext()
	defer stop()
	if !*closed && *latency && *rate <= 0 {
		fmt.Fprintln(stderr, "cutover bench: --closed=false measures no capacity to take half of: give the fixed rate with --rate")
		return 2
	}
	if *backendProcs < 0 {
		fmt.Fprintln(stderr, "cutover bench: --backend-procs must be 0 (Go's default) or more")
		return 2
	}
	env := strings.Fields(*cutoverEnv)
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			fmt.Fprintf(stderr, "cutover bench: --cutover-env: %q is not NAME=value\n", kv)
			return 2
		}
	}
	b := &bench{self: self, dir: dir, rounds: *rounds, duration: *duration, conns: *conns, out: stdout, nginx: *nginx, closed: *closed, rate: *rate, backendProcs: *backendProcs, cutoverEnv: env, quiet: *quiet}
	backends := gomaxprocs()
	if b.backendProcs > 0 {
		backends = strconv.Itoa(b.backendProcs)
	}
	fmt.Fprintf(stdout, "cutover bench: %d rounds of %s, %d connections, GOMAXPROCS %s (backends %s), %s\n", b.rounds, b.duration, b.conns, gomaxprocs(), backends, benchBuild())
	if len(env) > 0 {
		fmt.Fprintf(stdout, "cutover processes run with %s\n", strings.Join(env, " "))
	}
	fmt.Fprintln(stdout)
	if *onlyQueue {
		*sizes = ""
	}
	for _, s := range strings.Split(*sizes, ",") {
		if s == "" {
			continue
		}
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size < 200 {
			fmt.Fprintf(stderr, "bad size %q\n", s)
			return 2
		}
		if err := b.size(ctx, size, *latency, *overload); err != nil {
			fmt.Fprintln(stderr, "cutover bench:", err)
			return 1
		}
		*overload = 0 // once is enough: it is about memory, not size
	}
	if *queue || *onlyQueue {
		if err := b.queue(ctx, *queueOutage); err != nil {
			fmt.Fprintln(stderr, "cutover bench:", err)
			return 1
		}
	}
	return 0
}

func gomaxprocs() string {
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		return v
	}
	return "default"
}

type bench struct {
	self, dir string
	rounds    int
	duration  time.Duration
	conns     int
	nginx     bool
	closed    bool    // run the closed-loop throughput measurements
	rate      float64 // fixed rate of the latency runs; 0: half the baseline's capacity
	// backendProcs is the JSON backends' GOMAXPROCS.
	backendProcs int
	// cutoverEnv is added to the cutover processes' environment.
	cutoverEnv []string
	// quiet bounds the wait, after each measurement, for the machine to go
	// quiet: a machine busy with other work never does.
	quiet time.Duration
	out   io.Writer
}

// sample is one measurement of one system.
type sample struct {
	rate      float64
	p50, p99  time.Duration
	cpuPerReq time.Duration
	peakRSS   int64
	compared  float64 // share of reads compared (cutover shadow-read)
	answered  float64 // share of the Go mirror's copies the new backend answered
	copies    float64 // the Go mirror's copies sent (0: not the mirror)
	// unread names the counts (compared reads, the mirror's copies) that
	// could not be read: the cell says so rather than stay empty.
	unread     string
	errorShare float64
}

func (b *bench) measure(ctx context.Context, p *benchProcess, req []byte, open float64) sample {
	p.resetPeak()
	cpu0 := p.cpu()
	var unread []error
	c0, t0, err := comparedShare(p.admin)
	unread = append(unread, err)
	var a0, n0 int64
	if p.mirror {
		a0, n0, err = mirrorShare(p.addr)
		unread = append(unread, err)
	}
	var l load
	if open > 0 {
		l = openLoop(ctx, p.addr, open, req, b.duration, 4*b.conns)
	} else {
		l = closedLoop(ctx, p.addr, b.conns, req, b.duration)
	}
	peak, _ := p.memory()
	// Work left over after the load (queued secondary writes, comparisons)
	// belongs to this run: wait for the machine to go quiet, so it neither
	// steals from the next system measured nor escapes this one's CPU count.
	waitQuiet(b.quiet)
	cpu := p.cpu() - cpu0
	s := sample{rate: l.rate(), p50: l.hist.quantile(0.5), p99: l.hist.quantile(0.99), peakRSS: peak}
	if l.requests > 0 {
		s.cpuPerReq = cpu / time.Duration(l.requests)
		s.errorShare = float64(l.errors) / float64(l.requests+l.errors)
	}
	c1, t1, err := comparedShare(p.admin)
	unread = append(unread, err)
	if t1 > t0 {
		s.compared = float64(c1-c0) / float64(t1-t0)
	}
	if p.mirror {
		a1, n1, err := mirrorShare(p.addr)
		unread = append(unread, err)
		if n1 > n0 {
			s.answered, s.copies = float64(a1-a0)/float64(n1-n0), float64(n1-n0)
		}
	}
	if err := errors.Join(unread...); err != nil {
		s.unread = err.Error()
		fmt.Fprintf(os.Stderr, "\n  %s: %v\n", p.name, err)
	}
	return s
}

// row is the median of one system's samples.
type row struct {
	name string
	s    sample
}

// upperMedian is the middle value of v, the upper of the two middle ones
// when there is an even number; v is left as it was.
func upperMedian[T cmp.Ordered](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func median(ss []sample) sample {
	pick := func(f func(sample) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		return upperMedian(v)
	}
	var unread string
	for _, s := range ss {
		if s.unread != "" {
			unread = s.unread
		}
	}
	return sample{
		unread:     unread,
		rate:       pick(func(s sample) float64 { return s.rate }),
		p50:        time.Duration(pick(func(s sample) float64 { return float64(s.p50) })),
		p99:        time.Duration(pick(func(s sample) float64 { return float64(s.p99) })),
		cpuPerReq:  time.Duration(pick(func(s sample) float64 { return float64(s.cpuPerReq) })),
		peakRSS:    int64(pick(func(s sample) float64 { return float64(s.peakRSS) })),
		compared:   pick(func(s sample) float64 { return s.compared }),
		answered:   pick(func(s sample) float64 { return s.answered }),
		copies:     pick(func(s sample) float64 { return s.copies }),
		errorShare: pick(func(s sample) float64 { return s.errorShare }),
	}
}

// benchBuild names what is measured: the build's own stamp or, for a build
// without one (`go run` records no VCS data), the revision of the git
// checkout in the current directory, where `go run ./cmd/cutover bench`
// is run, so that a table can be traced to its code.
func benchBuild() buildInfo {
	bi := readBuildInfo()
	if bi.Revision != "unknown" {
		return bi
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return bi
	}
	bi.Revision = strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		bi.Modified = true
	}
	return bi
}

func request(method string, size int) []byte {
	if method == "GET" {
		return []byte("GET /items/42 HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n")
	}
	body := `{"name": "item", "price": 12.5, "tags": ["a", "b"]}`
	return []byte(fmt.Sprintf("PUT /items/42 HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}

// size runs every measurement for one answer size.
func (b *bench) size(ctx context.Context, size int, latency bool, overload time.Duration) error {
	old, err := startBenchBackend(b.self, size, b.backendProcs)
	if err != nil {
		return err
	}
	defer old.stop()
	new, err := startBenchBackend(b.self, size, b.backendProcs)
	if err != nil {
		return err
	}
	defer new.stop()

	var procs []*benchProcess
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(p *benchProcess, err error) *benchProcess {
		if p != nil {
			procs = append(procs, p)
		}
		if err != nil {
			fmt.Fprintln(b.out, "  (skipped:", err, ")")
		}
		return p
	}
	base := start(startBaseline(b.self, old.addr))
	prepare := start(startCutover(b.self, b.cutoverEnv, b.dir, fmt.Sprintf("prepare-%d", size), "prepare", old.addr, new.addr))
	shadow := start(startCutover(b.self, b.cutoverEnv, b.dir, fmt.Sprintf("shadow-%d", size), "shadow-read", old.addr, new.addr))
	dual := start(startCutover(b.self, b.cutoverEnv, b.dir, fmt.Sprintf("dual-%d", size), "dual-write", old.addr, new.addr))
	var mirror *benchProcess
	if latency {
		mirror = start(startMirror(b.self, old.addr, new.addr))
	}
	var ngx *benchProcess
	if b.nginx {
		ngx = start(startNginx(b.dir, old.addr, new.addr))
	}
	if base == nil || prepare == nil || shadow == nil || dual == nil || (latency && mirror == nil) {
		return fmt.Errorf("a system did not start")
	}
	get, put := request("GET", size), request("PUT", size)
	type system struct {
		name string
		p    *benchProcess
		req  []byte
	}
	systems := []system{
		{"plain Go proxy, GET", base, get},
		{"cutover prepare, GET", prepare, get},
		{"cutover shadow-read, GET", shadow, get},
		{"plain Go proxy, PUT", base, put},
		{"cutover dual-write async, PUT", dual, put},
	}
	if ngx != nil {
		systems = append(systems, system{"nginx mirror, GET", ngx, get})
	}
	// Warm every system up (connections, JIT-free but caches and pools).
	for _, s := range systems {
		closedLoop(ctx, s.p.addr, b.conns, s.req, time.Second)
	}
	if mirror != nil {
		closedLoop(ctx, mirror.addr, b.conns, get, time.Second)
	}
	var rows []row
	if b.closed {
		samples := make([][]sample, len(systems))
		for r := range b.rounds {
			for i, s := range systems {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				samples[i] = append(samples[i], b.measure(ctx, s.p, s.req, 0))
				fmt.Fprintf(os.Stderr, "\r  %d B: round %d/%d, %-32s", size, r+1, b.rounds, s.name)
			}
		}
		fmt.Fprintf(os.Stderr, "\r%80s\r", "")
		rows = make([]row, len(systems))
		for i, s := range systems {
			rows[i] = row{s.name, median(samples[i])}
		}
		fmt.Fprintf(b.out, "### %d-byte answers, %d connections (closed loop)\n\n", size, b.conns)
		b.table(rows, map[int]int{1: 0, 2: 0, 4: 3, 5: 0})
	}

	if latency {
		rate := b.rate
		if rate <= 0 {
			rate = rows[0].s.rate / 2
		}
		var shadowCapacity float64 // unknown without the closed loop
		if rows != nil {
			shadowCapacity = rows[2].s.rate
		}
		if err := b.latency(ctx, size, rate, shadowCapacity, systems[0].p, shadow, mirror, new, get); err != nil {
			return err
		}
	}
	switch {
	case overload > 0 && rows == nil:
		fmt.Fprintln(b.out, "\n(The overload run is skipped: it compares with the closed-loop shadow-read run, which --closed=false leaves out.)")
	case overload > 0:
		if err := b.overload(ctx, shadow, new, get, overload, rows[2].s.rate); err != nil {
			return err
		}
	}
	fmt.Fprintln(b.out)
	return nil
}

// latency measures the client's latency at a fixed rate: the plain proxy,
// shadow-read, shadow-read with the new backend 100 ms slower, the Go mirror
// (the plain proxy that also asks the new backend every read and drops its
// answer) with the new backend healthy and 100 ms slower, and the plain
// proxy again (its ratio to the first plain row is the noise of the run),
// taken in turn in every round so that the machine's drift falls on all
// alike. Under the table: the median and range of the per-round p99 ratios,
// the new backend's own CPU per request, since it shares the cores, and the
// rate as a share of shadow-read's own capacity when the closed loop
// measured it (shadowCapacity > 0): near it, requests queue, and the p99
// measures the queue more than shadow-read's cost.
func (b *bench) latency(ctx context.Context, size int, rate, shadowCapacity float64, plain, shadow, mirror *benchProcess, new *benchBackend, req []byte) error {
	fmt.Fprintf(b.out, "\n### %d-byte answers at a fixed %.0f req/s (half the plain proxy's capacity unless --rate)\n\n", size, rate)
	const slowBy = 100 * time.Millisecond
	const (
		plainRun = iota
		shadowRun
		shadowSlowRun
		mirrorRun
		mirrorSlowRun
		plainAgainRun
	)
	runs := []struct {
		name    string
		p       *benchProcess
		delay   time.Duration
		against int // the run its ratios are to, -1 for none
	}{
		plainRun:      {"plain Go proxy, GET", plain, 0, -1},
		shadowRun:     {"cutover shadow-read, GET", shadow, 0, plainRun},
		shadowSlowRun: {"cutover shadow-read, new +100 ms", shadow, slowBy, shadowRun},
		mirrorRun:     {"Go mirror (asks new too, compares nothing), GET", mirror, 0, plainRun},
		mirrorSlowRun: {"Go mirror, new +100 ms", mirror, slowBy, mirrorRun},
		plainAgainRun: {"plain Go proxy again (the run's noise)", plain, 0, plainRun},
	}
	samples := make([][]sample, len(runs))
	newCPU := make([][]float64, len(runs)) // µs per request
	defer new.set(0, false)
	for r := range b.rounds {
		for i, run := range runs {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := new.set(run.delay, false); err != nil {
				return err
			}
			cpu0 := new.cpu()
			s := b.measure(ctx, run.p, req, rate)
			samples[i] = append(samples[i], s)
			newCPU[i] = append(newCPU[i], float64((new.cpu()-cpu0).Microseconds())/(rate*b.duration.Seconds()))
			fmt.Fprintf(os.Stderr, "\r  %d B: fixed rate, round %d/%d, %-48s", size, r+1, b.rounds, run.name)
		}
	}
	fmt.Fprintf(os.Stderr, "\r%80s\r", "")
	rows := make([]row, len(runs))
	ratioTo := map[int]int{}
	for i, run := range runs {
		rows[i] = row{run.name, median(samples[i])}
		if run.against >= 0 {
			ratioTo[i] = run.against
		}
	}
	b.table(rows, ratioTo)
	fmt.Fprintln(b.out)
	// p99Ratio is the p99 of run i over run j's, in round r.
	p99Ratio := func(r, i, j int) float64 { return float64(samples[i][r].p99) / float64(samples[j][r].p99) }
	spread := func(ratio func(r int) float64) string {
		ratios := make([]float64, b.rounds)
		for r := range b.rounds {
			ratios[r] = ratio(r)
		}
		slices.Sort(ratios)
		return fmt.Sprintf("median %.2f×, from %.2f× to %.2f×", ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
	}
	for i, run := range runs {
		if run.against >= 0 {
			fmt.Fprintf(b.out, "- p99 of %q against %q, round by round: %s\n",
				run.name, runs[run.against].name, spread(func(r int) float64 { return p99Ratio(r, i, run.against) }))
		}
	}
	fmt.Fprintf(b.out, "- what the slow new backend costs cutover's clients beyond what it costs the mirror's (the first ratio over the second, round by round): %s\n",
		spread(func(r int) float64 {
			return p99Ratio(r, shadowSlowRun, shadowRun) / p99Ratio(r, mirrorSlowRun, mirrorRun)
		}))
	fmt.Fprintf(b.out, "- the new backend's own CPU per request (it shares the cores): %.0f µs healthy, %.0f µs when 100 ms slower\n",
		upperMedian(newCPU[shadowRun]), upperMedian(newCPU[shadowSlowRun]))
	if shadowCapacity > 0 {
		fmt.Fprintf(b.out, "- the fixed rate is %.0f %% of shadow-read's own capacity in this run (%.0f req/s with %d connections); near 100 %% requests queue\n",
			100*rate/shadowCapacity, shadowCapacity, b.conns)
	}
	return nil
}

// table prints rows with ratios: ratioTo maps a row to the row it is
// compared with.
func (b *bench) table(rows []row, ratioTo map[int]int) {
	fmt.Fprintln(b.out, "| system | req/s | ratio | p50 | p99 | p99 ratio | CPU/req | peak RSS | compared |")
	fmt.Fprintln(b.out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, r := range rows {
		ratio, p99ratio := "", ""
		if j, ok := ratioTo[i]; ok {
			ratio = fmt.Sprintf("%.2f×", r.s.rate/rows[j].s.rate)
			p99ratio = fmt.Sprintf("%.2f×", float64(r.s.p99)/float64(rows[j].s.p99))
		}
		compared := ""
		if r.s.compared > 0 {
			compared = fmt.Sprintf("%.1f %%", 100*r.s.compared)
		}
		if r.s.copies > 0 {
			compared = fmt.Sprintf("copies answered: %.1f %%", 100*r.s.answered)
		}
		if r.s.unread != "" {
			// A median over the rounds whose counts were read would
			// claim more than was measured.
			compared = "unknown: the counts could not be read in every round (stderr has the errors)"
		}
		if r.s.errorShare > 0.001 {
			compared += fmt.Sprintf(" (%.1f %% errors)", 100*r.s.errorShare)
		}
		fmt.Fprintf(b.out, "| %s | %.0f | %s | %s | %s | %s | %s | %.0f MiB | %s |\n", r.name, r.s.rate, ratio,
			r.s.p50.Round(time.Microsecond), r.s.p99.Round(time.Microsecond), p99ratio, r.s.cpuPerReq.Round(100*time.Nanosecond), float64(r.s.peakRSS)/(1<<20), compared)
	}
}

// overload holds every request to the new backend and drives shadow-read at
// full load: memory must stay flat and the client's throughput near the
// healthy run's.
func (b *bench) overload(ctx context.Context, p *benchProcess, new *benchBackend, req []byte, d time.Duration, healthy float64) error {
	if err := new.set(0, true); err != nil {
		return err
	}
	defer new.set(0, false)
	fmt.Fprintf(b.out, "\n### New backend hanging, shadow-read at full load for %s\n\n", d)
	p.resetPeak()
	_, rss0 := p.memory()
	l, samples, _ := loadWithMemory(p, func() load { return closedLoop(ctx, p.addr, b.conns, req, d) })
	if len(samples) < 30 {
		return fmt.Errorf("overload run too short to judge memory: use --overload 31s or more")
	}
	at10 := samples[9]
	maxAfter := slices.Max(samples[10:])
	g := growthAfter(samples, 10)
	mib := func(v float64) float64 { return v / (1 << 20) }
	fmt.Fprintln(b.out, "| measure | value |")
	fmt.Fprintln(b.out, "|---|---:|")
	fmt.Fprintf(b.out, "| RSS at start | %.0f MiB |\n", mib(float64(rss0)))
	fmt.Fprintf(b.out, "| RSS after 10 s | %.0f MiB |\n", mib(float64(at10)))
	fmt.Fprintf(b.out, "| median RSS in the 10 s after the first 10 / in the last 10 s | %.1f / %.1f MiB (%+.1f %%) |\n", mib(g.early), mib(g.late), 100*(g.late/max(g.early, 1)-1))
	fmt.Fprintf(b.out, "| RSS trend after 10 s (least squares) | %+.2f MiB per minute |\n", mib(g.perMinute))
	fmt.Fprintf(b.out, "| highest RSS after 10 s (the collector's sawtooth included) | %.0f MiB (%+.1f %%) |\n", mib(float64(maxAfter)), 100*(float64(maxAfter)/float64(at10)-1))
	fmt.Fprintf(b.out, "| client req/s, new hanging | %.0f |\n", l.rate())
	fmt.Fprintf(b.out, "| ratio to the healthy shadow-read run | %.2f× |\n", l.rate()/healthy)
	return nil
}

// growth is how a series of per-second samples moved after its first skip
// seconds.
type growth struct {
	early, late float64 // upper medians of the first and the last samples after skip
	perMinute   float64 // least-squares slope
}

// growthAfter judges growth by trend, not by one high sample: a heap
// collected every few seconds makes RSS a sawtooth a few MiB high, and its
// highest tooth says nothing about whether memory grows. The two windows
// are 10 samples each, fewer when there are under 20 after skip, and never
// overlap; skip must leave at least two samples.
func growthAfter(samples []int64, skip int) growth {
	s := samples[skip:]
	w := min(10, len(s)/2)
	g := growth{early: float64(upperMedian(s[:w])), late: float64(upperMedian(s[len(s)-w:]))}
	var sx, sy, sxx, sxy float64
	for i, v := range s {
		x, y := float64(i), float64(v)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n := float64(len(s)); n > 1 {
		g.perMinute = 60 * (n*sxy - sx*sy) / (n*sxx - sx*sx)
	}
	return g
}

// loadWithMemory runs a load while sampling the process's resident set
// (and its anonymous part: heap and stacks, not mapped files) every second.
func loadWithMemory(p *benchProcess, run func() load) (l load, rss, anon []int64) {
	done := make(chan load, 1)
	go func() { done <- run() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case l = <-done:
			return l, rss, anon
		case <-tick.C:
			_, now := p.memory()
			rss = append(rss, now)
			anon = append(anon, anonRSS(p))
		}
	}
}
