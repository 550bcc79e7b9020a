package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// The forwarding bench (`archiver-bench forward`, part of make bench): how soon the relay
// delivers an acknowledged event to a local receiver at a fixed arrival rate (open loop), and
// what forwarding to two destinations costs the ack throughput, against the same archiver with no
// destination, in one run. The receivers live in this process; the archiver runs as its own
// process, writing to a file store (the forward path does not involve S3).

// ForwardOptions configure RunForward.
type ForwardOptions struct {
	Rates       []int         // arrival rates (events/s) of the lag runs
	Duration    time.Duration // per run
	Conns       int           // closed-loop connections of the throughput runs
	ArchiverBin string
	Log         io.Writer
}

// LagResult is one open-loop run.
type LagResult struct {
	Rate                int           `json:"rate"`
	Sent, Acked         int           `json:"-"`
	Delivered           int           `json:"delivered"`
	P50, P99, Max       time.Duration `json:"-"`
	AchievedRate        float64       `json:"achieved_rate"`
	Errors              int           `json:"errors"`
	UndeliveredAfterRun int           `json:"undelivered"`
}

// ForwardResults are the figures of one forwarding bench run.
type ForwardResults struct {
	Machine    string
	Lag        []LagResult
	NoDest     *LoadResult
	TwoDest    *LoadResult
	Throughput float64 // TwoDest / NoDest req/s
	// ForwardedPerSec is the events delivered per second and destination during the two-destination
	// run, Backlog the events still queued per destination at its end (the relay sends one request
	// at a time per destination, to keep order).
	ForwardedPerSec float64
	Backlog         float64
}

// forwardFigures reads the relay's delivered and queued counts from /metrics (averaged over the
// destinations).
func forwardFigures(addr string, over time.Duration) (perSec, backlog float64) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var delivered, queued float64
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch {
		case strings.HasPrefix(l, "archiver_forward_delivered_total{"):
			delivered += v
			n++
		case strings.HasPrefix(l, "archiver_forward_queue_events{"):
			queued += v
		}
	}
	if n == 0 {
		return 0, 0
	}
	return delivered / float64(n) / over.Seconds(), queued / float64(n)
}

// receiver records when each event id first arrived.
type receiver struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	srv     *http.Server
	url     string
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := &receiver{arrived: map[string]time.Time{}, url: "http://" + ln.Addr().String() + "/cb"}
	rc.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Livehook-Event-Id")
		rc.mu.Lock()
		if _, ok := rc.arrived[id]; !ok {
			rc.arrived[id] = now
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = rc.srv.Serve(ln) }()
	return rc, nil
}

func (rc *receiver) get(id string) (time.Time, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	t, ok := rc.arrived[id]
	return t, ok
}

// RunForward runs the forwarding bench.
func RunForward(ctx context.Context, o ForwardOptions) (*ForwardResults, error) {
	dir, err := os.MkdirTemp("", "archiver-bench-forward-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the bench binary to re-exec receivers: %w", err)
	}
	r := &runner{opts: Options{ArchiverBin: o.ArchiverBin}, log: o.Log, dir: dir, self: self, tag: newRunTag(), pubTS: time.Now().Unix()}
	if err := r.buildArchiver(ctx); err != nil {
		return nil, err
	}
	res := &ForwardResults{Machine: machineString()}
	start := func(name string, dests ...string) (*proc.Process, string, error) {
		addr, err := proc.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		args := []string{"serve", "--listen", addr, "--ack", "spool", "--allow-unsigned",
			"--store", "file://" + filepath.Join(dir, "store-"+name), "--spool", filepath.Join(dir, "spool-"+name)}
		for i, d := range dests {
			args = append(args, "--forward", "d"+strconv.Itoa(i)+"="+d)
		}
		p, err := proc.Launch(ctx, proc.Spec{Name: name, Path: r.archBin, Args: args, Log: filepath.Join(dir, name+".log"),
			Ready: readyz(addr), StartTimeout: 30 * time.Second})
		return p, addr, err
	}
	stop := func(p *proc.Process) { _, _ = terminate(ctx, p, time.Minute) }

	for _, rate := range o.Rates {
		rc, err := startReceiver()
		if err != nil {
			return res, err
		}
		p, addr, err := start(fmt.Sprintf("lag-%d", rate), rc.url)
		if err != nil {
			return res, err
		}
		r.logf("forward lag: %d events/s for %s, one local receiver", rate, o.Duration)
		lr := openLoop(ctx, addr, rate, o.Duration, r.tag+strconv.Itoa(rate), rc)
		stop(p)
		_ = rc.srv.Close()
		res.Lag = append(res.Lag, lr)
		r.logf("forward lag at %d/s: p50 %s, p99 %s, max %s; %d acked, %d delivered", rate, fmtDur(lr.P50), fmtDur(lr.P99), fmtDur(lr.Max), lr.Acked, lr.Delivered)
	}

	for _, two := range []bool{false, true} {
		var dests []string
		name := "ack-nodest"
		if two {
			name = "ack-twodest"
			// The destinations are bare targets in their own processes: a receiver in this
			// process would take CPU from the load generator and lower the figure it measures.
			for i := range 2 {
				addr, err := proc.FreeAddr()
				if err != nil {
					return res, err
				}
				bin, args, _ := r.command("bare", addr, 0)
				bp, err := proc.Launch(ctx, proc.Spec{Name: "receiver", Path: bin, Args: args,
					Log: filepath.Join(dir, fmt.Sprintf("receiver-%d.log", i)), Ready: readyz(addr), StartTimeout: 30 * time.Second})
				if err != nil {
					return res, err
				}
				defer func() { _, _ = terminate(ctx, bp, 10*time.Second) }()
				dests = append(dests, "http://"+addr+"/cb")
			}
		}
		p, addr, err := start(name, dests...)
		if err != nil {
			return res, err
		}
		r.logf("ack throughput, %d destinations: %d connections, %s", len(dests), o.Conns, o.Duration)
		load, err := RunLoad(ctx, LoadConfig{Addr: addr, Path: "/callback", Conns: o.Conns, Warmup: time.Second,
			Duration: o.Duration, Timeout: 30 * time.Second, Tag: r.tag, PublishTS: r.pubTS + int64(len(dests))})
		if two && err == nil {
			res.ForwardedPerSec, res.Backlog = forwardFigures(addr, time.Second+o.Duration)
		}
		stop(p)
		if err != nil {
			return res, err
		}
		if two {
			res.TwoDest = load
		} else {
			res.NoDest = load
		}
	}
	res.Throughput = safeDiv(res.TwoDest.ReqPerSec, res.NoDest.ReqPerSec)
	return res, nil
}

// openLoop sends rate events/s for d (in 10 ms slices, whatever the answers' latency), then waits
// up to 30 s for the receiver, and measures each acknowledged event's lag: its arrival at the
// receiver minus the moment its 200 reached the sender (clamped at 0: the relay can deliver
// before the 200 is read).
func openLoop(ctx context.Context, addr string, rate int, d time.Duration, tag string, rc *receiver) LagResult {
	lr := LagResult{Rate: rate}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}, Timeout: 30 * time.Second}
	type ack struct {
		id string
		at time.Time
	}
	jobs := make(chan int, rate*int(d/time.Second+1))
	var mu sync.Mutex
	var acks []ack
	var wg sync.WaitGroup
	for range 128 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				body := fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"fwd-%s-%d","publish_timestamp":"%d","event":"PUBLISH"}`, tag, n, time.Now().Unix())
				resp, err := client.Post("http://"+addr+"/callback", "application/json", bytes.NewReader(body))
				if err != nil {
					mu.Lock()
					lr.Errors++
					mu.Unlock()
					continue
				}
				var b struct {
					EventID string `json:"event_id"`
				}
				err = json.NewDecoder(resp.Body).Decode(&b)
				resp.Body.Close()
				at := time.Now()
				mu.Lock()
				if resp.StatusCode == 200 && err == nil {
					acks = append(acks, ack{b.EventID, at})
				} else {
					lr.Errors++
				}
				mu.Unlock()
			}
		}()
	}
	began := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	n := 0
	for time.Since(began) < d && ctx.Err() == nil {
		<-tick.C
		due := int(float64(rate) * time.Since(began).Seconds())
		for ; n < due; n++ {
			jobs <- n
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	lr.Sent, lr.Acked = n, len(acks)
	lr.AchievedRate = float64(len(acks)) / time.Since(began).Seconds()
	deadline := time.Now().Add(30 * time.Second)
	var lags []time.Duration
	for _, a := range acks {
		for {
			t, ok := rc.get(a.id)
			if ok {
				lags = append(lags, max(0, t.Sub(a.at)))
				break
			}
			if time.Now().After(deadline) {
				lr.UndeliveredAfterRun++
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	lr.Delivered = len(lags)
	slices.Sort(lags)
	if len(lags) > 0 {
		lr.P50, lr.P99, lr.Max = lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1]
	}
	return lr
}

// WriteForwardMarkdown prints the figures.
func WriteForwardMarkdown(w io.Writer, r *ForwardResults) {
	fmt.Fprintf(w, "## Forwarding (relay)\n\n%s\n\n", r.Machine)
	fmt.Fprintln(w, "| arrival rate | achieved | acked | delivered | forward lag p50 | p99 | max | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, l := range r.Lag {
		fmt.Fprintf(w, "| %d/s | %.0f/s | %d | %d | %s | %s | %s | %d |\n", l.Rate, l.AchievedRate, l.Acked, l.Delivered, fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.Max), l.Errors)
	}
	if r.NoDest != nil && r.TwoDest != nil {
		fmt.Fprintf(w, "\n| ack throughput (closed loop, %d connections) | req/s | p50 | p99 |\n|---|---|---|---|\n", r.NoDest.Conns)
		fmt.Fprintf(w, "| no destination | %.0f | %s | %s |\n", r.NoDest.ReqPerSec, fmtDur(r.NoDest.P50), fmtDur(r.NoDest.P99))
		fmt.Fprintf(w, "| two destinations | %.0f | %s | %s |\n", r.TwoDest.ReqPerSec, fmtDur(r.TwoDest.P50), fmtDur(r.TwoDest.P99))
		fmt.Fprintf(w, "\ntwo destinations / none: %.2f; meanwhile each destination got %.0f events/s and was %.0f events behind at the end\n", r.Throughput, r.ForwardedPerSec, r.Backlog)
	}
}

// RunForwardCmd is `archiver-bench forward`.
func RunForwardCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("archiver-bench forward", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := ForwardOptions{Log: stderr}
	rates := fs.String("rates", "1000,5000", "arrival rates of the lag runs, events/s")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.Conns, "conns", 32, "connections of the throughput runs")
	fs.StringVar(&o.ArchiverBin, "archiver-bin", "", "use this archiver binary instead of building ./archiver")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if o.Rates, err = ParsePositiveInts(*rates); err != nil {
		fmt.Fprintf(stderr, "archiver-bench forward: --rates %q: want positive integers\n", *rates)
		return 2
	}
	res, err := RunForward(ctx, o)
	if res != nil {
		WriteForwardMarkdown(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "archiver-bench forward: %v\n", err)
		return 1
	}
	for _, l := range res.Lag {
		if l.UndeliveredAfterRun > 0 {
			fmt.Fprintf(stderr, "archiver-bench forward: FAIL: %d acknowledged events not delivered at %d/s\n", l.UndeliveredAfterRun, l.Rate)
			return 1
		}
	}
	return 0
}
