package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent lets the heap grow to five times the live data between
// collections instead of Go's two. A proxy's live heap is small (tens of
// MiB) and every collection costs every request: measured with `cutover
// bench` at 1 KB (9 rounds of 2 s), shadow reads went from 0.64× to 0.72×
// of a plain Go proxy, for 15 MiB more resident memory.
const defaultGCPercent = 400

// memoryLimitShare is the share of a container's memory limit given to Go
// as a soft limit, so the larger GC target never runs the process into the
// container's limit: near it, Go collects more often instead.
const memoryLimitShare = 0.8

// tuneGC applies --gc-percent and a soft memory limit from the cgroup. An
// operator's GOGC or GOMEMLIMIT keeps its usual meaning and wins.
func tuneGC(percent int, log *slog.Logger) {
	if _, set := os.LookupEnv("GOGC"); !set && percent != 0 {
		debug.SetGCPercent(percent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		return
	}
	if limit := cgroupMemoryLimit(); limit > 0 {
		debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
		log.Debug("memory limit from the cgroup", slog.Int64("cgroup_bytes", limit), slog.Float64("share", memoryLimitShare))
	}
}

// cgroupMemoryLimit reads the cgroup v2 (then v1) memory limit; 0 when
// there is none.
func cgroupMemoryLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		if v == "max" {
			return 0
		}
		n, err := strconv.ParseInt(v, 10, 64)
		// cgroup v1 writes a huge number for "no limit".
		if err != nil || n <= 0 || n > 1<<50 {
			return 0
		}
		return n
	}
	return 0
}
