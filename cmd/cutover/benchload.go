package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The bench's own load generator: raw HTTP/1.1 over keep-alive connections,
// one request in flight per connection, no allocation per request. It costs
// the same for every system measured, so ratios compare the proxies, not the
// client.

// histogram records latencies in log-linear buckets: 32 per power of two
// of microseconds (about 3 % precision), from 1 µs to about 18 hours.
type histogram struct {
	counts [64 * 32]atomic.Int64
}

func bucketOf(us uint64) int {
	if us < 32 {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us >> e keeps 6 bits: 32..63
	return (e+1)*32 + int(us>>e) - 32
}

func bucketValue(b int) float64 {
	if b < 32 {
		return float64(b)
	}
	e := b/32 - 1
	m := b%32 + 32
	return float64(uint64(m)<<e) * (1 + 0.5/float64(m))
}

func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	h.counts[min(bucketOf(us), len(h.counts)-1)].Add(1)
}

// quantile returns the q-quantile (0..1) as a duration.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(bucketValue(i) * float64(time.Microsecond))
		}
	}
	return 0
}

// load is what one run produced.
type load struct {
	requests, errors int64
	elapsed          time.Duration
	hist             *histogram
}

func (l load) rate() float64 { return float64(l.requests) / l.elapsed.Seconds() }

// rawClient is one keep-alive connection.
type rawClient struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var errStatus = errors.New("status is not 2xx")

// do sends one request and reads its whole answer.
func (c *rawClient) do(req []byte, deadline time.Time) error {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 32<<10)
	}
	c.conn.SetDeadline(deadline)
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return err
	}
	err := readAnswer(c.br)
	if err != nil && !errors.Is(err, errStatus) {
		c.close()
	}
	return err
}

// readAnswer reads a response: status line, headers, and a body framed by
// Content-Length or chunked encoding.
func readAnswer(br *bufio.Reader) error {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return fmt.Errorf("bad status line %q", line)
	}
	ok := line[9] == '2'
	length, chunked, closing := int64(-1), false, false
	for {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(h) <= 2 {
			break
		}
		switch {
		case hasPrefixFold(h, "content-length:"):
			n, err := strconv.ParseInt(string(bytes.TrimSpace(h[15:])), 10, 64)
			if err != nil {
				return err
			}
			length = n
		case hasPrefixFold(h, "transfer-encoding:"):
			chunked = bytes.Contains(bytes.ToLower(h), []byte("chunked"))
		case hasPrefixFold(h, "connection:"):
			closing = bytes.Contains(bytes.ToLower(h), []byte("close"))
		}
	}
	switch {
	case chunked:
		for {
			l, err := br.ReadSlice('\n')
			if err != nil {
				return err
			}
			size, _, _ := bytes.Cut(bytes.TrimSpace(l), []byte(";"))
			n, err := strconv.ParseInt(string(size), 16, 64)
			if err != nil {
				return err
			}
			if _, err := br.Discard(int(n) + 2); err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
	case length >= 0:
		if _, err := br.Discard(int(length)); err != nil {
			return err
		}
	default:
		return errors.New("answer without a length")
	}
	if closing {
		return io.EOF
	}
	if !ok {
		return errStatus
	}
	return nil
}

func hasPrefixFold(b []byte, p string) bool {
	return len(b) >= len(p) && bytes.EqualFold(b[:len(p)], []byte(p))
}

// closedLoop keeps conns requests in flight for d: as fast as the system
// answers.
func closedLoop(ctx context.Context, addr string, conns int, req []byte, d time.Duration) load {
	return closedLoopMany(ctx, addr, conns, [][]byte{req}, d)
}

// closedLoopMany is closedLoop over several requests, taken in turn.
func closedLoopMany(ctx context.Context, addr string, conns int, reqs [][]byte, d time.Duration) load {
	h := &histogram{}
	var n, errs, next atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &rawClient{addr: addr}
			defer c.close()
			for ctx.Err() == nil {
				req := reqs[int(next.Add(1))%len(reqs)]
				t := time.Now()
				if err := c.do(req, t.Add(10*time.Second)); err != nil {
					errs.Add(1)
					continue
				}
				h.record(time.Since(t))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return load{requests: n.Load(), errors: errs.Load(), elapsed: time.Since(start), hist: h}
}

// openLoop sends rate requests per second for d, whatever the answers do,
// and measures each latency from the moment the request was due, so a stall
// counts against the system (no coordinated omission).
func openLoop(ctx context.Context, addr string, rate float64, req []byte, d time.Duration, conns int) load {
	h := &histogram{}
	var n, errs atomic.Int64
	due := make(chan time.Time, int(rate*d.Seconds())+1)
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &rawClient{addr: addr}
			defer c.close()
			for t := range due {
				if ctx.Err() != nil {
					continue
				}
				if err := c.do(req, time.Now().Add(10*time.Second)); err != nil {
					errs.Add(1)
					continue
				}
				h.record(time.Since(t))
				n.Add(1)
			}
		}()
	}
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d || ctx.Err() != nil {
			break
		}
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	return load{requests: n.Load(), errors: errs.Load(), elapsed: d, hist: h}
}
