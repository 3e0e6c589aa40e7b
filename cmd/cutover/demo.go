package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/rules"
)

//go:embed demo.yaml
var demoConfig string

// runDemo starts two sample implementations of a small API, a gateway in
// front of them with rules that absorb the benign differences, the admin
// listener and light traffic, and prints where to look.
func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "proxy address; a free port is used if it is taken (CUTOVER_LISTEN)")
	adminListen := fs.String("admin-listen", "127.0.0.1:9090", "admin address; a free port is used if it is taken (CUTOVER_ADMIN_LISTEN)")
	rate := fs.Float64("rate", 40, "requests per second of the traffic generator; 0 sends none (CUTOVER_RATE)")
	duration := fs.Duration("duration", 0, "stop after this long; 0 runs until Ctrl-C (CUTOVER_DURATION)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error (CUTOVER_LOG_LEVEL)")
	if err := parseFlags(fs, args); err != nil {
		return flagsExit(err)
	}
	log, err := newLogger(stderr, *logLevel, "auto")
	if err != nil {
		fmt.Fprintln(stderr, "cutover demo:", err)
		return 2
	}
	ctx, stop := signalContext()
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := demo(ctx, demoOptions{listen: *listen, adminListen: *adminListen, rate: *rate}, stdout, log); err != nil {
		fmt.Fprintln(stderr, "cutover demo:", err)
		return 1
	}
	return 0
}

type demoOptions struct {
	listen, adminListen string
	rate                float64
	// ready, if set, gets the proxy and admin addresses once serving (tests).
	ready func(proxy, admin string)
}

// demo runs until ctx ends.
func demo(ctx context.Context, opt demoOptions, stdout io.Writer, log *slog.Logger) error {
	var servers []*http.Server
	var serving sync.WaitGroup
	defer func() {
		for _, s := range servers {
			s.Close()
		}
		serving.Wait()
	}()
	urls := map[string]string{}
	for _, flavor := range []string{"old", "new"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: newDemoAPI(flavor, time.Now).handler(), ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		serving.Add(1)
		go func() {
			defer serving.Done()
			srv.Serve(ln)
		}()
		urls[flavor] = "http://" + ln.Addr().String()
	}

	src := strings.NewReplacer("{{old}}", urls["old"], "{{new}}", urls["new"]).Replace(demoConfig)
	set, err := rules.Parse("demo.yaml", strings.NewReader(src))
	if err != nil {
		return fmt.Errorf("the embedded demo configuration is invalid: %w", err)
	}
	dataDir, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)

	in := &instance{log: log}
	in.proxyLn = listenOrAny(opt.listen)
	in.adminLn = listenOrAny(opt.adminListen)
	if in.proxyLn == nil || in.adminLn == nil {
		return errors.New("cannot listen on loopback")
	}
	if err := in.start(rules.NewStatic(set), dataDir); err != nil {
		return err
	}
	proxyURL, adminURL := "http://"+in.proxyAddr(), "http://"+in.adminAddr()
	fmt.Fprintf(stdout, `cutover demo is running.

  dashboard      %s/
  routes (JSON)  %s/api/v1/routes
  metrics        %s/metrics
  proxy          %s   (try: curl %s/users/1)
  old backend    %s
  new backend    %s

The new backend renames a field, prints numbers differently, orders an array
differently, adds fields and stamps its own times: the rules absorb all that.
It also forgets discounts in order totals: that is the real bug to find.
Traffic: %.0f requests/s. Stop with Ctrl-C.
`, adminURL, adminURL, adminURL, proxyURL, proxyURL, urls["old"], urls["new"], opt.rate)
	if opt.ready != nil {
		opt.ready(in.proxyAddr(), in.adminAddr())
	}

	var traffic sync.WaitGroup
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	if opt.rate > 0 {
		traffic.Add(1)
		go func() {
			defer traffic.Done()
			demoTraffic(trafficCtx, proxyURL, opt.rate, log)
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-in.failed:
	}
	stopTraffic()
	traffic.Wait()
	if serr := in.shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// listenOrAny listens on addr, or on a free loopback port when addr is taken.
func listenOrAny(addr string) net.Listener {
	if ln, err := net.Listen("tcp", addr); err == nil {
		return ln
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	return ln
}

// demoTraffic sends a mix of reads and writes at rate per second until ctx
// ends; each request has its own timeout, so the loop always moves on.
func demoTraffic(ctx context.Context, base string, rate float64, log *slog.Logger) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		method, path, body := "GET", "", ""
		switch n := rand.IntN(100); {
		case n < 40:
			path = fmt.Sprintf("/users/%d", rand.IntN(12)+1) // 11 and 12 do not exist: 404 on both
		case n < 65:
			path = fmt.Sprintf("/orders/%d", rand.IntN(30)+1)
		case n < 75:
			method, path, body = "POST", "/search", fmt.Sprintf(`{"prefix": %q}`, demoNames[rand.IntN(len(demoNames))][:1])
		case n < 90:
			id := rand.IntN(10) + 1
			method, path = "PUT", fmt.Sprintf("/users/%d", id)
			body = fmt.Sprintf(`{"name": %q, "email": "%s@example.com", "roles": ["dev", "ops"], "balance": %d.5}`, demoNames[id-1], demoNames[id-1], rand.IntN(100))
		case n < 98:
			method, path = "PUT", fmt.Sprintf("/orders/%d", rand.IntN(30)+1)
			body = fmt.Sprintf(`{"user_id": %d, "items": [{"sku": "SKU-001", "qty": %d, "price": 9.99}], "discount": %d}`, rand.IntN(10)+1, rand.IntN(3)+1, rand.IntN(2)*5)
		default:
			path = "/health"
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewBufferString(body))
		if err != nil {
			return
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("demo traffic", slog.String("error", err.Error()))
			}
			continue
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}
