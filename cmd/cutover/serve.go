package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", stderr)
	config := fs.String("config", "cutover.yaml", "configuration file (CUTOVER_CONFIG)")
	dataDir := fs.String("data-dir", "./cutover-data", "directory for the retry queue and the statistics (CUTOVER_DATA_DIR)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (CUTOVER_LOG_LEVEL)")
	logFormat := fs.String("log-format", "auto", "auto (colour on a terminal, JSON otherwise), text or json (CUTOVER_LOG_FORMAT)")
	gcPercent := fs.Int("gc-percent", defaultGCPercent, "the garbage collector's GOGC; the GOGC variable wins when set (CUTOVER_GC_PERCENT)")
	if err := parseFlags(fs, args); err != nil {
		return flagsExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "cutover serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintln(stderr, "cutover serve:", err)
		return 2
	}
	tuneGC(*gcPercent, log)
	// Signals are taken before anything is served: a SIGTERM that came
	// between the first request and the handler's installation would end
	// the process at once, undrained.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signalContext()
	defer stop()
	inst := &instance{log: log}
	live, err := rules.NewLive(*config, log, inst.reloaded)
	if err != nil {
		printConfigError(stderr, missingConfig(err, "pass --config FILE or set CUTOVER_CONFIG"))
		return 1
	}
	if err := inst.start(live, *dataDir); err != nil {
		log.Error("cannot start", slog.String("error", err.Error()))
		return 1
	}
	fmt.Fprintf(stdout, "cutover %s: proxy on http://%s, admin on http://%s\n", readBuildInfo().Version, inst.proxyAddr(), inst.adminAddr())

	var wg sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := live.Watch(watchCtx); err != nil {
			log.Warn("rules are not watched; reload with SIGHUP", slog.String("error", err.Error()))
		}
	}()
	for done := false; !done; {
		select {
		case <-hup:
			_ = live.Reload() // logged and counted
		case <-ctx.Done():
			done = true
		case err := <-inst.failed:
			log.Error("listener failed", slog.String("error", err.Error()))
			done = true
		}
	}
	stopWatch()
	wg.Wait()
	if err := inst.shutdown(); err != nil {
		log.Error("shutdown", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

// missingConfig adds to the error of a configuration file that does not
// exist how the command is given one.
func missingConfig(err error, how string) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (%s; README.md has an example)", err, how)
	}
	return err
}

// printConfigError writes a configuration's problems one per line, as
// file:line:col: message.
func printConfigError(w io.Writer, err error) {
	if ps := rules.AsProblems(err); ps != nil {
		for _, p := range ps {
			fmt.Fprintln(w, p)
		}
		return
	}
	fmt.Fprintln(w, err)
}

// instance is one running gateway: the proxy listener, the admin listener
// and what they share. serve and demo both run one.
type instance struct {
	log      *slog.Logger
	live     *rules.Live
	store    *stats.Store
	proxy    *gateway.Proxy
	registry *prometheus.Registry
	ready    atomic.Bool
	reloads  reloadCounts

	proxySrv, adminSrv *http.Server
	proxyLn, adminLn   net.Listener
	failed             chan error
	audit              *os.File // operator actions, one JSON line each
	serving            sync.WaitGroup
}

// start binds both listeners and serves on them. On failure it closes
// whatever it had opened (listeners given by the demo included).
func (in *instance) start(live *rules.Live, dataDir string) (err error) {
	set := live.Current()
	in.live = live
	in.failed = make(chan error, 2)
	defer func() {
		if err != nil {
			in.closeOpened()
		}
	}()
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		audit, err := os.OpenFile(filepath.Join(dataDir, "audit.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		in.audit = audit
	}
	redact, err := redactOptions(set.Redact)
	if err != nil {
		return positioned(set, err)
	}
	store, err := stats.Open(stats.Options{Dir: dataDir, Logger: in.log, Redact: redact})
	if err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	in.store = store
	view := stats.View{Store: store, Config: func() []stats.RouteInfo { return stats.RouteInfos(live.Current()) }}
	bi := readBuildInfo()
	in.registry = prometheus.NewRegistry()
	in.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		stats.NewCollector(view, stats.BuildInfo{Version: bi.Version, Revision: bi.Revision}),
	)
	proxy, err := gateway.New(gateway.Config{
		Rules:      live,
		Stats:      in.store,
		Registerer: in.registry,
		Logger:     in.log,
		DataDir:    dataDir,
	})
	if err != nil {
		return err
	}
	in.proxy = proxy

	// The demo binds its own listeners (falling back to free ports).
	if in.proxyLn == nil {
		if in.proxyLn, err = net.Listen("tcp", set.Listen); err != nil {
			return fmt.Errorf("proxy listener: %w%s", err, listenHint(err, "listen", set.Source))
		}
	}
	if in.adminLn == nil {
		if in.adminLn, err = net.Listen("tcp", set.Admin.Listen); err != nil {
			return fmt.Errorf("admin listener: %w%s", err, listenHint(err, "admin.listen", set.Source))
		}
	}
	errLog := slog.NewLogLogger(in.log.Handler(), slog.LevelWarn)
	in.proxySrv = proxy.NewServer(errLog)
	var audit io.Writer
	if in.audit != nil {
		audit = in.audit
	}
	admin, err := in.adminHandler(view, set.Admin.Auth, audit)
	if err != nil {
		return positioned(set, err)
	}
	in.adminSrv = &http.Server{
		Handler:           admin,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          errLog,
	}
	in.ready.Store(true)
	for _, s := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{in.proxySrv, gateway.FramingListener(in.proxyLn)}, {in.adminSrv, in.adminLn}} {
		in.serving.Add(1)
		go func() {
			defer in.serving.Done()
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				in.failed <- err
			}
		}()
	}
	in.log.Info("cutover started", slog.String("proxy", in.proxyAddr()), slog.String("admin", in.adminAddr()),
		slog.String("rules", set.Version), slog.Int("routes", len(set.Routes)))
	return nil
}

// closeOpened closes what a failed start had opened, in reverse order.
func (in *instance) closeOpened() {
	for _, ln := range []net.Listener{in.adminLn, in.proxyLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if in.proxy != nil {
		in.proxy.Close(context.Background())
	}
	if in.store != nil {
		in.store.Close(context.Background())
	}
	if in.audit != nil {
		in.audit.Close()
	}
}

func (in *instance) proxyAddr() string { return in.proxyLn.Addr().String() }
func (in *instance) adminAddr() string { return in.adminLn.Addr().String() }

// reloaded counts every reload attempt; it is Live's hook.
func (in *instance) reloaded(_ *rules.Set, err error) {
	if err != nil {
		in.reloads.failed.Add(1)
		now := time.Now().UTC() // as the admin API shows times
		in.reloads.lastError.Store(&now)
	} else {
		in.reloads.ok.Add(1)
	}
	if in.proxy != nil {
		in.proxy.RulesReloaded(err)
	}
}

// adminDrain bounds the wait for admin requests in flight at shutdown.
const adminDrain = 5 * time.Second

// shutdown drains in the order a load balancer needs: /readyz turns 503,
// the drain delay lets endpoints be removed, in-flight requests finish,
// shadow work and queued writes get what is left of the timeout.
func (in *instance) shutdown() error {
	set := in.live.Current()
	in.ready.Store(false)
	in.log.Info("shutting down", slog.String("drain_delay", set.Server.DrainDelay.String()), slog.String("timeout", set.Server.ShutdownTimeout.String()))
	if set.Server.DrainDelay > 0 {
		time.Sleep(set.Server.DrainDelay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), set.Server.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := in.proxySrv.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("proxy listener: %w", err))
	}
	if err := in.proxy.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("background work: %w", err))
	}
	// The admin listener before the statistics: an operator's reset or
	// redrive after their last flush would be lost. Its own few seconds,
	// since the drain may have spent ctx: the requests in flight end
	// before the flush.
	adminCtx, cancelAdmin := context.WithTimeout(context.Background(), adminDrain)
	defer cancelAdmin()
	if err := in.adminSrv.Shutdown(adminCtx); err != nil {
		errs = append(errs, fmt.Errorf("admin listener: %w", err))
	}
	// Flushed even when the drain took the whole timeout.
	if err := in.store.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("statistics: %w", err))
	}
	in.serving.Wait()
	if in.audit != nil {
		if err := in.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("audit log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// redactOptions turns the redact section into the statistics' options,
// reading the hash key from its file.
func redactOptions(r rules.Redact) (stats.RedactOptions, error) {
	o := stats.RedactOptions{Headers: r.Headers, Unredact: r.Unredact, Paths: r.Paths, Query: r.Query}
	if r.KeyFile != "" {
		key, err := os.ReadFile(r.KeyFile)
		if err != nil {
			return o, &configError{path: "$.redact.key_file", hint: "make one with: head -c 32 /dev/urandom > FILE", err: fmt.Errorf("redact.key_file: %w", err)}
		}
		if len(key) < 16 {
			return o, &configError{path: "$.redact.key_file", hint: "make one with: head -c 32 /dev/urandom > FILE",
				err: fmt.Errorf("redact.key_file %s: the key must have at least 16 bytes", r.KeyFile)}
		}
		o.Key = key
	}
	return o, nil
}

// listenHint says what to do about a listener that could not be opened, for
// the causes an operator meets: the port taken, or reserved to root.
func listenHint(err error, key, file string) string {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Sprintf(" (another process listens there: stop it, or change %s in %s)", key, file)
	case errors.Is(err, syscall.EACCES):
		return fmt.Sprintf(" (ports under 1024 need root or CAP_NET_BIND_SERVICE: give another port in %s of %s)", key, file)
	}
	return ""
}
