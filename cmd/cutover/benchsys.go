package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchBackend is one of the identical JSON backends the bench measures
// against, in its own process (`cutover bench-backend`) like the proxies, so
// that no system shares a Go runtime with the load generator. Its answers
// can be delayed or held, through a control path, to show what a slow or
// hanging new backend does to the client.
type benchBackend struct {
	*benchProcess
}

func startBenchBackend(self string, size, procs int) (*benchBackend, error) {
	cmd := exec.Command(self, "bench-backend", "--size", strconv.Itoa(size))
	if procs > 0 {
		// The backends share the cores with what is measured; fewer Ps
		// make them wake fewer threads per request.
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
	}
	p, err := startProcess("backend", cmd)
	if err != nil {
		return nil, err
	}
	return &benchBackend{p}, nil
}

// set changes the backend's behaviour: a delay added to every answer, and
// whether it holds every request until told otherwise.
func (b *benchBackend) set(delay time.Duration, hang bool) error {
	res, err := http.Post(fmt.Sprintf("http://%s/_bench?delay=%s&hang=%t", b.addr, delay, hang), "text/plain", nil)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return fmt.Errorf("backend control: %s", res.Status)
	}
	return nil
}

// runBenchBackend is the hidden `bench-backend` command.
func runBenchBackend(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench-backend", stderr)
	size := fs.Int("size", 1024, "bytes of each GET answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	body := benchDocument(*size)
	ok := []byte(`{"ok": true}`)
	var delay atomic.Int64
	var hang atomic.Pointer[chan struct{}]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_bench" {
			d, _ := time.ParseDuration(r.URL.Query().Get("delay"))
			delay.Store(int64(d))
			if r.URL.Query().Get("hang") == "true" {
				ch := make(chan struct{})
				hang.CompareAndSwap(nil, &ch)
			} else if ch := hang.Swap(nil); ch != nil {
				close(*ch)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if d := delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if ch := hang.Load(); ch != nil {
			select {
			case <-*ch:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Write(ok)
	})}
	return serveUntilSignal(srv, ln, stdout, stderr)
}

// benchDocument is a JSON document of about size bytes, shaped like a REST
// answer: an object with metadata and a list of records.
func benchDocument(size int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"meta": {"page": 1, "total": 9007199254740993}, "items": [`)
	for i := 0; sb.Len() < size-120; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, `{"id": %d, "name": "item-%05d", "price": %d.%02d, "tags": ["a", "b"], "active": %t}`, i, i, i*7%1000, i%100, i%2 == 0)
	}
	sb.WriteString(`], "next": null}`)
	return []byte(sb.String())
}

// benchProcess is a proxy under test running as its own process, so its CPU
// time and memory can be read from /proc.
type benchProcess struct {
	name   string
	addr   string // proxy address
	admin  string // cutover's admin address, "" for others
	mirror bool   // the Go mirror: it counts its copies at mirrorStatsPath
	cmd    *exec.Cmd
	exited chan struct{}
}

var addrLine = regexp.MustCompile(`(?:proxy on http://|listening on )(\S+?)(?:,|$)(?:.*admin on http://(\S+))?`)

// startProcess runs cmd and waits for it to print the address it serves.
func startProcess(name string, cmd *exec.Cmd) (*benchProcess, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	dieWithBench(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProcess{name: name, cmd: cmd, exited: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	select {
	case l := <-lines:
		m := addrLine.FindStringSubmatch(l)
		if m == nil {
			p.stop()
			return nil, fmt.Errorf("%s: unexpected first line %q", name, l)
		}
		p.addr, p.admin = m[1], m[2]
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before serving", name)
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start", name)
	}
}

func (p *benchProcess) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// pids returns the process and its children (nginx's workers).
func (p *benchProcess) pids() []int {
	pid := p.cmd.Process.Pid
	return append([]int{pid}, childPIDs(pid)...)
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		if f := statFields(child); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// statFields returns /proc/PID/stat's fields after the command name (which
// may hold spaces): state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
}

// cpu returns the user+system CPU time of the process and its children.
func (p *benchProcess) cpu() time.Duration {
	var ticks int64
	for _, pid := range p.pids() {
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// resetPeak starts a new peak-RSS measurement (Linux clear_refs 5).
func (p *benchProcess) resetPeak() {
	for _, pid := range p.pids() {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// memory returns the peak and current resident set size in bytes of the
// process and its children.
func (p *benchProcess) memory() (peak, now int64) {
	for _, pid := range p.pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch k {
			case "VmHWM":
				peak += kb << 10
			case "VmRSS":
				now += kb << 10
			}
		}
	}
	return peak, now
}

// startBaseline runs the plain httputil.ReverseProxy that every ratio is
// measured against, in its own process (`cutover bench-baseline`).
func startBaseline(self, target string) (*benchProcess, error) {
	return startProcess("plain Go proxy", exec.Command(self, "bench-baseline", "--target", "http://"+target))
}

// startMirror runs the second baseline of the latency runs: the plain proxy
// that also asks the new backend every GET and throws its answer away, the
// least a proxy that shadows reads must do. What a slow new backend costs it
// on these shared cores is the part of cutover's cost that is not cutover's.
func startMirror(self, target, mirror string) (*benchProcess, error) {
	p, err := startProcess("Go mirror", exec.Command(self, "bench-baseline", "--target", "http://"+target, "--mirror", "http://"+mirror))
	if p != nil {
		p.mirror = true
	}
	return p, err
}

// mirrorStatsPath is where the Go mirror answers how many of its copies
// the new backend answered (200, in time) and how many it did not: a
// mirror whose copies fail does less than cutover, and looks faster.
const mirrorStatsPath = "/_bench/mirror"

// mirrorShare reads the Go mirror's counts of copies, once none is in
// flight (a copy that times out takes 2 s to be counted) or after 3 s.
func mirrorShare(addr string) (answered, total int64, err error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		res, err := http.Get("http://" + addr + mirrorStatsPath)
		if err != nil {
			return 0, 0, err
		}
		var failed, inflight int64
		_, err = fmt.Fscanf(res.Body, "answered %d\nfailed %d\nin flight %d\n", &answered, &failed, &inflight)
		res.Body.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("the mirror's counts: %w", err)
		}
		if inflight == 0 || time.Now().After(deadline) {
			return answered, answered + failed, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runBenchBaseline is the hidden `bench-baseline` command: a plain
// httputil.ReverseProxy with a transport tuned as cutover's is (the default
// transport keeps 2 idle connections per host and would make the baseline
// look slower than it is).
func runBenchBaseline(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench-baseline", stderr)
	target := fs.String("target", "", "backend URL")
	mirror := fs.String("mirror", "", "backend URL every GET is also sent to, its answer read and dropped")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	if err := fs.Parse(args); err != nil || *target == "" {
		return 2
	}
	u, err := url.Parse(*target)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	m, err := url.Parse(*mirror)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{Proxy: nil, MaxIdleConns: 2048, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		ErrorLog:  nil,
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	if *mirror == "" {
		return serveUntilSignal(srv, ln, stdout, stderr)
	}
	// As cutover's secondary legs: as many idle connections as it has shadow
	// workers, and the bench's new-backend timeout.
	mt := &http.Transport{Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
	defer mt.CloseIdleConnections()
	// The mirrored requests end with the server (their context) and are
	// waited for before the command returns; none starts after that.
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.RWMutex // every mirrored GET reads closed: no lock shared between them
		closed bool
		wg     sync.WaitGroup
	)
	defer func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		cancel()
		wg.Wait()
	}()
	goMirror := func(f func()) {
		mu.RLock()
		defer mu.RUnlock()
		if !closed {
			wg.Go(f)
		}
	}
	var answered, failed, inflight atomic.Int64
	copyTo := func(out string) bool {
		ctx, stop := context.WithTimeout(ctx, 2*time.Second)
		defer stop()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, out, nil)
		if err != nil {
			return false
		}
		res, err := mt.RoundTrip(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return err == nil && res.StatusCode == http.StatusOK
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == mirrorStatsPath {
			fmt.Fprintf(w, "answered %d\nfailed %d\nin flight %d\n", answered.Load(), failed.Load(), inflight.Load())
			return
		}
		if r.Method == http.MethodGet {
			out := (&url.URL{Scheme: m.Scheme, Host: m.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}).String()
			inflight.Add(1)
			goMirror(func() {
				defer inflight.Add(-1)
				if copyTo(out) {
					answered.Add(1)
				} else {
					failed.Add(1)
				}
			})
		}
		rp.ServeHTTP(w, r)
	})
	return serveUntilSignal(srv, ln, stdout, stderr)
}

// startCutover runs `cutover serve` in phase for the two backends.
func startCutover(self string, env []string, dir, name, phase, old, new string) (*benchProcess, error) {
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0", pprof: true}
backends:
  old: {url: "http://%s", timeout: 10s}
  new: {url: "http://%s", timeout: 2s}
defaults:
  phase: %s
  secondary_writes: async
routes:
  - name: items
    match: {path: "/items/{id}"}
`, old, new, phase)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startProcess(name, cutoverCommand(self, env, path, filepath.Join(dir, name+"-data")))
	if err == nil {
		// To profile a system while it is measured.
		fmt.Fprintf(os.Stderr, "  %s: profiles at http://%s/debug/pprof/\n", name, p.admin)
	}
	return p, err
}

// cutoverCommand is `cutover serve` with the bench's config, data directory
// and extra environment.
func cutoverCommand(self string, env []string, config, dataDir string) *exec.Cmd {
	cmd := exec.Command(self, "serve", "--config", config, "--data-dir", dataDir, "--log-level", "error", "--log-format", "json")
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	return cmd
}

// startNginx runs nginx with the mirror module as a second baseline: it fans
// every request out to new and compares nothing. Nil without nginx.
func startNginx(dir, old, new string) (*benchProcess, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			return nil, nil
		}
		bin = "/usr/sbin/nginx"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	d := filepath.Join(dir, "nginx")
	os.MkdirAll(d, 0o700)
	conf := fmt.Sprintf(`daemon off;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream old { server %[2]s; keepalive 256; }
  upstream new { server %[3]s; keepalive 256; }
  server {
    listen %[4]s;
    location / {
      mirror /mirror;
      proxy_pass http://old;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location = /mirror {
      internal;
      proxy_pass http://new$request_uri;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, d, old, new, addr)
	path := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", path, "-e", filepath.Join(d, "error.log"))
	cmd.Stderr = os.Stderr
	dieWithBench(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProcess{name: "nginx mirror", addr: addr, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	// nginx prints nothing: wait until it accepts connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("nginx exited; see %s/error.log", d)
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("nginx did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// comparedShare reads how many reads cutover compared, from its admin API.
func comparedShare(admin string) (compared, total int64, err error) {
	if admin == "" {
		return 0, 0, nil
	}
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("cutover's metrics: %s", res.Status)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "cutover_comparisons_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cutover's metrics: %q: %w", line, err)
		}
		total += int64(v)
		if strings.Contains(line, `outcome="match"`) || strings.Contains(line, `outcome="mismatch"`) {
			compared += int64(v)
		}
	}
	return compared, total, sc.Err()
}

// waitQuiet waits until the machine's CPUs are at least 90 % idle over a
// quarter of a second, or max has passed.
func waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	busy0, total0 := cpuTimes()
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		busy1, total1 := cpuTimes()
		if total1 > total0 && float64(busy1-busy0) < 0.1*float64(total1-total0) {
			return
		}
		busy0, total0 = busy1, total1
	}
}

// cpuTimes reads the machine's busy and total CPU ticks from /proc/stat.
func cpuTimes() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f); i++ {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		total += v
		if i != 4 && i != 5 { // idle and iowait
			busy += v
		}
	}
	return busy, total
}

// serveUntilSignal prints the address (the bench reads it from the first
// line) and serves until SIGINT or SIGTERM.
func serveUntilSignal(srv *http.Server, ln net.Listener, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())
	ctx, stop := signalContext()
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
