package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// LoadConfig describes one closed-loop load run against one target.
type LoadConfig struct {
	Addr      string        // host:port of the target
	Path      string        // request path, "/callback"
	Conns     int           // concurrent keep-alive connections, one worker each
	Warmup    time.Duration // sent but not counted in the window figures
	Duration  time.Duration // the measured window
	Timeout   time.Duration // per request; an answer slower than this is a transport error
	Tag       string        // run tag that makes identities unique across runs
	PublishTS int64         // publish_timestamp of every body
}

// LoadResult holds the figures of one load run. Window figures count the requests started in
// the measured window (the in-flight one of each worker at its end is finished and counted);
// All figures add the warm-up, and are what the archive must hold afterwards.
type LoadResult struct {
	Conns           int           `json:"conns"`
	Warmup          time.Duration `json:"warmup_ns"`
	Window          time.Duration `json:"window_ns"`
	Requests        int64         `json:"requests"`  // window: answered + transport errors
	OK              int64         `json:"ok"`        // window: 200s
	ReqPerSec       float64       `json:"req_per_s"` // window 200s / window
	P50             time.Duration `json:"p50_ns"`
	P90             time.Duration `json:"p90_ns"`
	P99             time.Duration `json:"p99_ns"`
	P999            time.Duration `json:"p999_ns"`
	Max             time.Duration `json:"max_ns"`
	Status          map[int]int64 `json:"status"`           // window, by HTTP status
	TransportErrors int64         `json:"transport_errors"` // window: connect/write/read failures and timeouts
	AllOK           int64         `json:"all_ok"`           // warm-up + window 200s: the events the archive must hold
	AllErrors       int64         `json:"all_errors"`       // warm-up + window: non-200 answers + transport errors
	ErrorSamples    []string      `json:"error_samples,omitempty"`
	PerSecondOK     []int64       `json:"per_second_ok"` // 200s answered in each second since the start (warm-up included)

	acked []bitset // per worker: sequence numbers answered 200
}

// Errors is the window's non-200 answers plus transport errors.
func (r *LoadResult) Errors() int64 {
	n := r.TransportErrors
	for code, c := range r.Status {
		if code != 200 {
			n += c
		}
	}
	return n
}

type workerStats struct {
	lats       []time.Duration
	status     [600]int64 // window
	allStatus  [600]int64 // warm-up + window
	transport  int64
	allTransp  int64
	perSecond  []int64
	acked      bitset
	errSamples []string
}

const maxErrorSamples = 5

// RunLoad drives the target with cfg.Conns closed-loop workers for warm-up + window and returns
// the merged figures. Cancelling ctx stops early (the figures are then partial).
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	if cfg.Conns <= 0 || cfg.Conns > maxWorkers {
		return nil, fmt.Errorf("conns %d out of range 1..%d", cfg.Conns, maxWorkers)
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, fmt.Errorf("duration must be > 0 and warm-up >= 0 (got %s, %s)", cfg.Duration, cfg.Warmup)
	}
	if cfg.Path == "" {
		cfg.Path = "/callback"
	}
	if cfg.Tag == "" {
		cfg.Tag = newRunTag()
	}
	templates := make([]*requestTemplate, cfg.Conns)
	for i := range templates {
		t, err := newRequestTemplate(cfg.Addr, cfg.Path, cfg.Tag, i, cfg.PublishTS)
		if err != nil {
			return nil, err
		}
		templates[i] = t
	}

	// Connections of every worker, so cancellation can unblock a read in progress.
	var (
		connMu sync.Mutex
		conns  = make([]*rawConn, cfg.Conns)
		dead   atomic.Bool
	)
	stopAfter := context.AfterFunc(ctx, func() {
		dead.Store(true)
		connMu.Lock()
		defer connMu.Unlock()
		for _, c := range conns {
			if c != nil {
				_ = c.c.SetDeadline(time.Unix(1, 0))
			}
		}
	})
	defer stopAfter()

	start := time.Now()
	windowStart := start.Add(cfg.Warmup)
	end := windowStart.Add(cfg.Duration)
	seconds := int((cfg.Warmup+cfg.Duration)/time.Second) + 2
	// Expected latencies per worker, to avoid regrowing the slices during the window.
	stats := make([]*workerStats, cfg.Conns)
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		ws := &workerStats{lats: make([]time.Duration, 0, 16<<10), perSecond: make([]int64, seconds)}
		stats[w] = ws
		wg.Go(func() {
			tmpl := templates[w]
			var conn *rawConn
			setConn := func(c *rawConn) {
				connMu.Lock()
				conns[w] = c
				connMu.Unlock()
			}
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			var seq uint64
			var bodyBuf []byte
			for !dead.Load() {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				inWindow := !t0.Before(windowStart)
				if conn == nil {
					c, err := dialRaw(cfg.Addr, cfg.Timeout)
					if err != nil {
						ws.fail(inWindow, err)
						sleepUntil(ctx, 50*time.Millisecond, end)
						continue
					}
					conn = c
					setConn(c)
				}
				tmpl.setSeq(seq)
				curSeq := seq
				seq++ // a request that reached the target may be stored even if its answer is lost
				keep := len(ws.errSamples) < maxErrorSamples
				resp, err := conn.roundTrip(tmpl.buf, keep, bodyBuf[:0])
				t1 := time.Now()
				if err != nil {
					if dead.Load() {
						return
					}
					ws.fail(inWindow, err)
					conn.Close()
					conn = nil
					setConn(nil)
					continue
				}
				code := min(max(resp.Status, 0), len(ws.status)-1)
				ws.allStatus[code]++
				if inWindow {
					ws.status[code]++
					ws.lats = append(ws.lats, t1.Sub(t0))
				}
				if resp.Status == 200 {
					ws.acked.set(curSeq)
					if s := int(t1.Sub(start) / time.Second); s < len(ws.perSecond) {
						ws.perSecond[s]++
					}
				} else if keep {
					ws.errSamples = append(ws.errSamples, fmt.Sprintf("HTTP %d: %s", resp.Status, truncate(resp.Body)))
				}
				bodyBuf = resp.Body
				if resp.Close {
					conn.Close()
					conn = nil
					setConn(nil)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load run interrupted: %w", err)
	}

	res := &LoadResult{
		Conns:       cfg.Conns,
		Warmup:      cfg.Warmup,
		Window:      cfg.Duration,
		Status:      map[int]int64{},
		PerSecondOK: make([]int64, seconds),
		acked:       make([]bitset, cfg.Conns),
	}
	lats := make([][]time.Duration, cfg.Conns)
	for w, ws := range stats {
		lats[w] = ws.lats
		res.acked[w] = ws.acked
		for code, n := range ws.status {
			if n > 0 {
				res.Status[code] += n
				res.Requests += n
			}
		}
		for code, n := range ws.allStatus {
			if code == 200 {
				res.AllOK += n
			} else {
				res.AllErrors += n
			}
		}
		res.TransportErrors += ws.transport
		res.Requests += ws.transport
		res.AllErrors += ws.allTransp
		for s, n := range ws.perSecond {
			res.PerSecondOK[s] += n
		}
		for _, e := range ws.errSamples {
			if len(res.ErrorSamples) < maxErrorSamples {
				res.ErrorSamples = append(res.ErrorSamples, e)
			}
		}
	}
	for len(res.PerSecondOK) > 0 && res.PerSecondOK[len(res.PerSecondOK)-1] == 0 {
		res.PerSecondOK = res.PerSecondOK[:len(res.PerSecondOK)-1]
	}
	res.OK = res.Status[200]
	res.ReqPerSec = float64(res.OK) / cfg.Duration.Seconds()
	all := mergeSorted(lats)
	res.P50 = percentile(all, 50)
	res.P90 = percentile(all, 90)
	res.P99 = percentile(all, 99)
	res.P999 = percentile(all, 99.9)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res, nil
}

func (ws *workerStats) fail(inWindow bool, err error) {
	ws.allTransp++
	if inWindow {
		ws.transport++
	}
	if len(ws.errSamples) < maxErrorSamples {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("timed out: %w", err)
		}
		ws.errSamples = append(ws.errSamples, err.Error())
	}
}

// sleepUntil sleeps d, but not past end and not after ctx is done.
func sleepUntil(ctx context.Context, d time.Duration, end time.Time) {
	_ = ctxsleep.Sleep(ctx, min(d, time.Until(end)))
}
