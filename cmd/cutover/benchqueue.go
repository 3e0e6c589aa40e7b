package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// queueKeys is how many resources the queue measurements write to: writes
// to one resource are delivered one at a time, so a single hot key would
// measure the secondary's latency, not the queue.
const queueKeys = 1000

// benchQueue measures the durable secondary-write queue (issue 5): the
// throughput of async dual writes with the queue on disk against the same
// gateway with it in memory (--data-dir ""), in alternating rounds of one
// run, then the memory of the durable gateway while the new backend is down
// for outage under steady write load, and how long it takes to drain after.
func (b *bench) queue(ctx context.Context, outage time.Duration) error {
	old, err := startBenchBackend(b.self, 1024, b.backendProcs)
	if err != nil {
		return err
	}
	defer old.stop()
	new, err := startBenchBackend(b.self, 1024, b.backendProcs)
	if err != nil {
		return err
	}
	defer new.stop()
	durable, err := startQueueCutover(b.self, b.cutoverEnv, b.dir, "queue-durable", filepath.Join(b.dir, "queue-durable-data"), old.addr, new.addr)
	if err != nil {
		return err
	}
	defer durable.stop()
	memory, err := startQueueCutover(b.self, b.cutoverEnv, b.dir, "queue-memory", "", old.addr, new.addr)
	if err != nil {
		return err
	}
	defer memory.stop()

	reqs := make([][]byte, queueKeys)
	for i := range reqs {
		body := fmt.Sprintf(`{"name": "item %d", "price": 12.5, "tags": ["a", "b"]}`, i)
		reqs[i] = []byte(fmt.Sprintf("PUT /items/%d HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body))
	}
	for _, p := range []*benchProcess{durable, memory} {
		closedLoopMany(ctx, p.addr, b.conns, reqs, time.Second)
	}
	var d, m []load
	for r := range b.rounds {
		for _, s := range []struct {
			p   *benchProcess
			out *[]load
		}{{durable, &d}, {memory, &m}} {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := waitDrained(ctx, s.p.admin, time.Minute); err != nil {
				return err
			}
			*s.out = append(*s.out, closedLoopMany(ctx, s.p.addr, b.conns, reqs, b.duration))
			fmt.Fprintf(os.Stderr, "\r  queue: round %d/%d", r+1, b.rounds)
		}
	}
	fmt.Fprintf(os.Stderr, "\r%40s\r", "")
	dm, mm := medianLoad(d), medianLoad(m)
	fmt.Fprintf(b.out, "### Async dual writes (PUT, %d resources, %d connections): queue on disk vs in memory\n\n", queueKeys, b.conns)
	fmt.Fprintln(b.out, "| queue | req/s | ratio | p50 | p99 |")
	fmt.Fprintln(b.out, "|---|---:|---:|---:|---:|")
	fmt.Fprintf(b.out, "| in memory (--data-dir \"\") | %.0f | 1.00× | %s | %s |\n", mm.rate(), mm.hist.quantile(.5).Round(time.Microsecond), mm.hist.quantile(.99).Round(time.Microsecond))
	fmt.Fprintf(b.out, "| on disk (DATA_DIR/queue.db, fsync per group commit) | %.0f | %.2f× | %s | %s |\n", dm.rate(), dm.rate()/mm.rate(),
		dm.hist.quantile(.5).Round(time.Microsecond), dm.hist.quantile(.99).Round(time.Microsecond))
	memory.stop()
	if outage <= 0 {
		return nil
	}
	return b.outage(ctx, durable, new, reqs, outage)
}

// outage hangs the new backend and writes at a steady pace for d: every
// write is queued on disk, memory must stay flat.
func (b *bench) outage(ctx context.Context, p *benchProcess, new *benchBackend, reqs [][]byte, d time.Duration) error {
	if err := waitDrained(ctx, p.admin, time.Minute); err != nil {
		return err
	}
	if err := new.set(0, true); err != nil {
		return err
	}
	healed := false
	defer func() {
		if !healed {
			new.set(0, false)
		}
	}()
	conns := max(1, b.conns/4) // steady, not saturating
	fmt.Fprintf(b.out, "\n### New backend down for %s, async dual writes from %d connections\n\n", d, conns)
	p.resetPeak()
	_, rss0 := p.memory()
	anon0 := anonRSS(p)
	l, samples, anon := loadWithMemory(p, func() load { return closedLoopMany(ctx, p.addr, conns, reqs, d) })
	peak, _ := p.memory()
	queued, err := pendingWrites(p.admin)
	if err != nil {
		return err
	}
	size := dirSize(filepath.Join(b.dir, "queue-durable-data", "queue.db"))
	healed = true
	if err := new.set(0, false); err != nil {
		return err
	}
	start := time.Now()
	if err := waitDrained(ctx, p.admin, 10*time.Minute); err != nil {
		return err
	}
	drain := time.Since(start)
	fmt.Fprintln(b.out, "| measure | value |")
	fmt.Fprintln(b.out, "|---|---:|")
	fmt.Fprintf(b.out, "| writes accepted during the outage | %d (%.0f req/s) |\n", l.requests, l.rate())
	fmt.Fprintf(b.out, "| queued at the end (on disk) | %d, queue.db %.0f MiB |\n", queued, float64(size)/(1<<20))
	fmt.Fprintf(b.out, "| RSS at start | %.0f MiB |\n", float64(rss0)/(1<<20))
	if len(samples) > 10 {
		fmt.Fprintf(b.out, "| RSS after 10 s | %.0f MiB |\n", float64(samples[9])/(1<<20))
		fmt.Fprintf(b.out, "| highest RSS after 10 s | %.0f MiB |\n", float64(slices.Max(samples[10:]))/(1<<20))
	}
	fmt.Fprintf(b.out, "| peak RSS (VmHWM) during the outage | %.0f MiB |\n", float64(peak)/(1<<20))
	if len(anon) > 10 {
		fmt.Fprintf(b.out, "| anonymous RSS (heap, stacks: not the mapped queue file) at start / after 10 s / highest after | %.0f / %.0f / %.0f MiB |\n",
			float64(anon0)/(1<<20), float64(anon[9])/(1<<20), float64(slices.Max(anon[10:]))/(1<<20))
	}
	fmt.Fprintf(b.out, "| time to deliver the backlog once new is back | %s |\n", drain.Round(100*time.Millisecond))
	return nil
}

// startQueueCutover runs cutover in dual-write with its queue in dataDir
// ("" keeps it in memory).
func startQueueCutover(self string, env []string, dir, name, dataDir, old, new string) (*benchProcess, error) {
	cfg := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
backends:
  old: {url: "http://%s", timeout: 10s}
  new: {url: "http://%s", timeout: 2s}
defaults:
  phase: dual-write
  secondary_writes: async
routes:
  - name: items
    match: {path: "/items/{id}"}
`, old, new)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return startProcess(name, cutoverCommand(self, env, path, dataDir))
}

func medianLoad(ls []load) load {
	slices.SortFunc(ls, func(a, b load) int {
		switch {
		case a.rate() < b.rate():
			return -1
		case a.rate() > b.rate():
			return 1
		}
		return 0
	})
	return ls[len(ls)/2]
}

// pendingWrites reads the queue depth from the admin API.
func pendingWrites(admin string) (int64, error) {
	res, err := http.Get("http://" + admin + "/api/v1/routes")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var routes []struct {
		Writes struct {
			Pending int64 `json:"pending_retries"`
		} `json:"writes"`
	}
	if err := json.NewDecoder(res.Body).Decode(&routes); err != nil {
		return 0, err
	}
	var n int64
	for _, r := range routes {
		n += r.Writes.Pending
	}
	return n, nil
}

// waitDrained waits until the gateway has no queued write.
func waitDrained(ctx context.Context, admin string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		n, err := pendingWrites(admin)
		if err == nil && n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("queue did not drain in %s (%d left, %v)", limit, n, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// anonRSS is the process's anonymous resident memory (RssAnon): its heap
// and stacks, without the pages of files it maps (bbolt maps queue.db; the
// kernel can drop those pages at will).
func anonRSS(p *benchProcess) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func dirSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
