package bench

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// The open-loop benchmark (make bench-openloop): a fixed offered rate of distinct, signed
// callbacks (vegeta sends each at its scheduled time whatever the earlier ones are doing), so a
// slow answer cannot slow the sender down and hide the queue behind it (coordinated omission).
// Latency is measured from the intended send time of each request, not from when it went out.

// OpenLoopTargets are the servers of an open-loop run, in order: the bare net/http ceiling, the
// floor of a durable answer (a minimal group commit, see groupCommit; not in the default run) and
// the archiver in both ack modes (store mode against VersityGW; spool mode uploads to it too).
var OpenLoopTargets = []string{"bare", "floor", "spool", "store"}

// referenceTarget reports whether name is a comparison server, not an archiver: nothing is read
// back from an archive and no archiver goal applies.
func referenceTarget(name string) bool { return name == "bare" || name == "floor" }

// OpenLoopOptions configure an open-loop run.
type OpenLoopOptions struct {
	Rates    []int         // offered callbacks per second, each run for Duration
	Duration time.Duration // per rate
	Warmup   time.Duration // at the first rate, before the measured rates, per target
	Idle     time.Duration // idle window whose CPU is measured, per target
	Timeout  time.Duration // the sender's timeout: an answer later than this is an error
	// Conns caps the sender's connections (0: no cap, vegeta's default). A sender's pool is finite;
	// uncapped, vegeta opens a connection per late request, and past the archiver's
	// --max-connections those wait in the kernel's accept queue whatever the archiver does.
	// Requests waiting for a connection still count from their intended send time.
	Conns       int
	Targets     []string // subset of OpenLoopTargets
	ArchiverBin string
	ExtraArgs   []string // more `archiver serve` flags for both archiver targets
	// Arrivals is "constant" (request n due at n/rate: a metronome, the default) or "poisson"
	// (exponential gaps of the same mean rate, seeded: independent senders, as real streams are).
	Arrivals string
	// FloorWindow is the floor target's wait before each commit (the archiver's --commit-window
	// default, 3ms, for a like-for-like floor).
	FloorWindow time.Duration
	// ProfileDir, when set, runs the archiver targets inside the bench binary (server.Run) with
	// <target>.cpu.prof and <target>.allocs.prof written here.
	ProfileDir string
	WorkDir    string
	Log        io.Writer
}

// DefaultOpenLoop is the standard run.
func DefaultOpenLoop() OpenLoopOptions {
	return OpenLoopOptions{
		Rates:       []int{1000, 5000, 10000, 20000, 40000},
		Duration:    5 * time.Second,
		Warmup:      2 * time.Second,
		Idle:        3 * time.Second,
		Timeout:     10 * time.Second,
		Conns:       1000,
		FloorWindow: 3 * time.Millisecond,
		Targets:     []string{"bare", "spool", "store"},
	}
}

// RateResult is one row: one target at one offered rate.
type RateResult struct {
	Target  string `json:"target"`
	Offered int    `json:"offered_per_s"`
	Sent    int64  `json:"sent"`
	OK      int64  `json:"ok"`      // 200
	Shed    int64  `json:"shed"`    // 503 with Retry-After
	Other   int64  `json:"other"`   // any other status
	Errors  int64  `json:"errors"`  // no answer (timeout, connection error)
	Late    int64  `json:"late_1s"` // answers (any status) more than 1 s after the intended send time, and no answers
	// LateFrom and LateTo bound the intended send times (from the rate's start) of the late
	// answers: a burst at the start of an overload is the controller's reaction time, a spread
	// over the window a standing queue.
	LateFrom time.Duration `json:"late_from_ns,omitempty"`
	LateTo   time.Duration `json:"late_to_ns,omitempty"`
	Goodput  float64       `json:"goodput"` // 200s per second of the window
	P50      time.Duration `json:"p50_ns"`  // of every request, from the intended send time; no answer counts at the sender timeout
	P99      time.Duration `json:"p99_ns"`  //
	P999     time.Duration `json:"p999_ns"` //
	Max      time.Duration `json:"max_ns"`  //
	CPU      time.Duration `json:"cpu_ns"`  // the server process's user+system CPU over the window
	CPUPer1k float64       `json:"cpu_ms_per_1k"`
	RSS      int64         `json:"rss_bytes"` // max sampled VmRSS during the window
	Err      string        `json:"error,omitempty"`
}

// TargetRun is one target's rows plus what is measured once per target.
type TargetRun struct {
	Name     string        `json:"name"`
	Command  string        `json:"command"`
	IdleCPU  float64       `json:"idle_cpu_ms_per_s"`
	Rows     []*RateResult `json:"rows"`
	Acked    int           `json:"acked"`   // distinct events answered 200 (archiver targets)
	Found    int           `json:"found"`   // of those, read back from the archive
	Missing  int           `json:"missing"` // answered 200, not in the archive: data loss
	PeakRSS  int64         `json:"peak_rss_bytes"`
	Err      string        `json:"error,omitempty"`
	LogPath  string        `json:"log,omitempty"`
	ackedIDs map[[16]byte]struct{}
}

// OpenLoopResults is a whole run.
type OpenLoopResults struct {
	Started time.Time       `json:"started"`
	Machine string          `json:"machine"`
	Load    string          `json:"load_avg"` // /proc/loadavg at the start: other work on the machine
	Options OpenLoopOptions `json:"options"`
	Targets []*TargetRun    `json:"targets"`
}

const (
	olKey    = "0123456789abcdef0123456789abcdef" // the bench's own auth_sign_key
	olDomain = "push.example.com"
)

// RunOpenLoop runs every target at every rate and returns the table's data.
func RunOpenLoop(ctx context.Context, o OpenLoopOptions) (*OpenLoopResults, error) {
	d := DefaultOpenLoop()
	if len(o.Rates) == 0 {
		o.Rates = d.Rates
	}
	if o.Duration <= 0 {
		o.Duration = d.Duration
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if len(o.Targets) == 0 {
		o.Targets = d.Targets
	}
	for _, t := range o.Targets {
		if !slices.Contains(OpenLoopTargets, t) {
			return nil, fmt.Errorf("unknown target %q (want some of %s)", t, strings.Join(OpenLoopTargets, ","))
		}
	}
	if o.Arrivals == "" {
		o.Arrivals = "constant"
	}
	if !slices.Contains(ArrivalKinds, o.Arrivals) {
		return nil, fmt.Errorf("arrivals %q: want %s", o.Arrivals, strings.Join(ArrivalKinds, " or "))
	}
	for _, r := range o.Rates {
		if r <= 0 {
			return nil, fmt.Errorf("rate %d: rates are positive callbacks per second", r)
		}
	}
	r := newRunner(o.Log, Options{ArchiverBin: o.ArchiverBin})
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locating the bench binary to re-exec targets: %w", err)
	}
	r.self = self
	if r.dir = o.WorkDir; r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "archiver-openloop-*"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(r.dir)
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	res := &OpenLoopResults{
		Started: time.Now(),
		Machine: machineString(),
		Load:    loadAvg(),
		Options: o,
	}
	archivers := slices.ContainsFunc(o.Targets, func(t string) bool { return !referenceTarget(t) })
	if archivers {
		if o.ProfileDir != "" {
			if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
				return nil, err
			}
		} else if err := r.buildArchiver(ctx); err != nil {
			return nil, err
		}
		r.logf("starting VersityGW in %s", r.dir)
		stop, err := r.startS3(ctx)
		defer func() { _ = stop() }()
		if err != nil {
			return nil, err
		}
	}
	keys, err := r.writeKeys()
	if err != nil {
		return nil, err
	}
	for i, name := range OpenLoopTargets {
		if !slices.Contains(o.Targets, name) {
			continue
		}
		res.Targets = append(res.Targets, r.openLoopTarget(ctx, o, name, i, keys))
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("interrupted: %w", err)
		}
	}
	return res, nil
}

func (r *runner) openLoopCommand(o OpenLoopOptions, name, addr, keys string) (string, []string, []string) {
	switch name {
	case "bare":
		return r.self, []string{"target", "bare", "--listen", addr}, nil
	case "floor":
		return r.self, []string{"target", "groupcommit", "--listen", addr, "--file", filepath.Join(r.dir, "floor.jsonl"),
			"--window", o.FloorWindow.String()}, nil
	}
	args := []string{"serve", "--listen", addr, "--ack", name, "--keys", keys,
		"--store", "s3://" + bucket + "/" + r.olPrefix(name), "--s3-endpoint", r.vgw.Endpoint,
		"--spool", filepath.Join(r.dir, "spool-"+name), "--log-level", "warn"}
	args = append(args, o.ExtraArgs...)
	if o.ProfileDir != "" {
		pre := []string{"target", "archiver",
			"--cpuprofile", filepath.Join(o.ProfileDir, name+".cpu.prof"),
			"--memprofile", filepath.Join(o.ProfileDir, name+".allocs.prof"), "--"}
		return r.self, append(pre, args[1:]...), r.vgw.Env()
	}
	return r.archBin, args, r.vgw.Env()
}

// openLoopTarget starts one target, measures its idle CPU, runs every rate, stops it and (archiver
// targets) reads every acknowledged event back.
func (r *runner) openLoopTarget(ctx context.Context, o OpenLoopOptions, name string, index int, keys string) *TargetRun {
	tr := &TargetRun{Name: name, ackedIDs: map[[16]byte]struct{}{}}
	fail := func(err error) *TargetRun {
		tr.Err = err.Error()
		r.logf("%s: %v", name, err)
		return tr
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return fail(err)
	}
	bin, args, env := r.openLoopCommand(o, name, addr, keys)
	tr.Command = filepath.Base(bin) + " " + strings.Join(args, " ")
	tr.LogPath = filepath.Join(r.dir, "openloop-"+name+".log")
	r.logf("%s: starting %s", name, tr.Command)
	p, err := proc.Launch(ctx, proc.Spec{Name: name, Path: bin, Args: args, Env: env, Log: tr.LogPath,
		Ready: readyz(addr), StartTimeout: 30 * time.Second})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = p.Kill() }()

	if o.Idle > 0 {
		c0, _ := procCPU(p.PID())
		t0 := time.Now()
		if err := ctxsleep.Sleep(ctx, o.Idle); err != nil {
			return fail(err)
		}
		c1, _ := procCPU(p.PID())
		tr.IdleCPU = float64((c1 - c0).Milliseconds()) / time.Since(t0).Seconds()
	}
	gen := &callbackGen{tag: r.tag, group: index, pubTS: r.pubTS}
	url := "http://" + addr + "/callback"
	if o.Warmup > 0 {
		r.logf("%s: warm-up at %d/s for %s", name, o.Rates[0], o.Warmup)
		_ = r.attack(ctx, o.sender(), name, tr.ackedIDs, gen, url, p.PID(), o.Rates[0], o.Warmup)
	}
	for _, rate := range o.Rates {
		row := r.attack(ctx, o.sender(), name, tr.ackedIDs, gen, url, p.PID(), rate, o.Duration)
		tr.Rows = append(tr.Rows, row)
		r.logf("%s at %d/s: %.0f ok/s, %d shed, %d errors, p50 %s p99 %s p99.9 %s max %s, %.0f ms CPU per 1k, RSS %s",
			name, rate, row.Goodput, row.Shed, row.Errors, fmtDur(row.P50), fmtDur(row.P99), fmtDur(row.P999), fmtDur(row.Max), row.CPUPer1k, fmtBytes(row.RSS))
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		// Let the previous rate's backlog (uploads, segment rotation) settle before the next.
		_ = ctxsleep.Sleep(ctx, time.Second)
	}
	if _, hwm, err := memStatus(p.PID()); err == nil {
		tr.PeakRSS = hwm
	}
	if _, err := terminate(ctx, p, 2*time.Minute); err != nil {
		return fail(err)
	}
	if referenceTarget(name) {
		return tr
	}
	if tr.Acked, tr.Found, tr.Missing, err = r.readBack(ctx, name, tr.ackedIDs); err != nil {
		return fail(err)
	}
	return tr
}

// readBack looks for every acknowledged event id in name's archive and counts what it finds.
func (r *runner) readBack(ctx context.Context, name string, acked map[[16]byte]struct{}) (n, found, missing int, err error) {
	in, err := readEventIDs(ctx, r, name)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("reading back: %w", err)
	}
	for id := range acked {
		if _, ok := in[id]; ok {
			found++
		} else {
			missing++
		}
	}
	r.logf("%s: %d events answered 200, %d read back, %d missing", name, len(acked), found, missing)
	return len(acked), found, missing, nil
}

// sender is what attack takes of the options: the sender's timeout, connection cap and arrivals
// (see OpenLoopOptions).
type sender struct {
	Timeout  time.Duration
	Conns    int
	Arrivals string
}

func (o OpenLoopOptions) sender() sender {
	return sender{Timeout: o.Timeout, Conns: o.Conns, Arrivals: o.Arrivals}
}

// attack offers rate callbacks/s for d to target name and summarises the answers; the event id of
// every 200 goes into acked.
func (r *runner) attack(ctx context.Context, s sender, name string, acked map[[16]byte]struct{}, gen *callbackGen, url string, pid, rate int, d time.Duration) *RateResult {
	row := &RateResult{Target: name, Offered: rate}
	// The attacker's own transport (vegeta's defaults), so that this rate's connections are closed
	// when it ends: left idle, they would hold the server's --max-connections slots in the next.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections,
		MaxConnsPerHost:     s.Conns,
	}
	defer tr.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Timeout: s.Timeout, Transport: tr}), vegeta.MaxBody(512))
	sampler := sampleRSS(pid, 100*time.Millisecond)
	c0, _ := procCPU(pid)
	sched := newSchedule(s.Arrivals, rate, d)
	began := time.Now()
	results := atk.Attack(gen.targeter(url), sched, d, name)
	lat := make([]time.Duration, 0, int(float64(rate)*d.Seconds())+16)
	var timely int64 // 200s within olAnswerBound: a later one is past what a sender waits for
	done := ctx.Done()
	for res := range results {
		select {
		case <-done:
			atk.Stop()
			done = nil
		default:
		}
		row.Sent++
		// From the intended send time: request seq was due at began + its scheduled offset.
		at := sched.due(res.Seq)
		due := began.Add(at)
		l := res.End().Sub(due)
		if res.Code == 0 {
			// No answer: it enters the figures at the sender timeout (a refused connection too),
			// so p99 and max never hide requests that got none.
			l = max(l, res.Timestamp.Add(s.Timeout).Sub(due))
			row.Errors++
			if row.Err == "" {
				row.Err = res.Error
			}
		}
		lat = append(lat, l)
		if l > olAnswerBound {
			if row.Late == 0 || at < row.LateFrom {
				row.LateFrom = at
			}
			row.LateTo = max(row.LateTo, at)
			row.Late++
		}
		switch res.Code {
		case 0: // counted in Errors above
		case http.StatusOK:
			row.OK++
			if l <= olAnswerBound {
				timely++
			}
			if id, ok := responseEventID(res.Body); ok {
				acked[id] = struct{}{}
			}
		case http.StatusServiceUnavailable:
			row.Shed++
		default:
			row.Other++
			if row.Err == "" {
				row.Err = fmt.Sprintf("%d %s", res.Code, strings.TrimSpace(string(res.Body)))
			}
		}
	}
	c1, _ := procCPU(pid)
	row.RSS = sampler.Stop()
	row.CPU = c1 - c0
	row.CPUPer1k = safeDiv(float64(row.CPU.Milliseconds())*1000, float64(row.Sent))
	row.Goodput = float64(timely) / d.Seconds()
	slices.Sort(lat)
	row.P50, row.P99, row.P999 = percentile(lat, 50), percentile(lat, 99), percentile(lat, 99.9)
	if len(lat) > 0 {
		row.Max = lat[len(lat)-1]
	}
	return row
}

// schedule is a vegeta.Pacer whose send times are known in advance, so that each request's
// latency is measured from when it was due.
type schedule struct {
	rate     int
	interval time.Duration   // constant arrivals
	dues     []time.Duration // poisson arrivals: request n is due at dues[n]
}

// ArrivalKinds are the values of OpenLoopOptions.Arrivals.
var ArrivalKinds = []string{"constant", "poisson"}

func newSchedule(kind string, rate int, d time.Duration) *schedule {
	s := &schedule{rate: rate, interval: time.Second / time.Duration(rate)}
	if kind != "poisson" {
		return s
	}
	// Seeded by the rate: every target of a run gets the same arrivals at that rate.
	r := rand.New(rand.NewPCG(uint64(rate), 0x6c697665686f6f6b))
	mean := float64(time.Second) / float64(rate)
	for t := time.Duration(0); t <= d; t += time.Duration(r.ExpFloat64() * mean) {
		s.dues = append(s.dues, t)
	}
	return s
}

func (s *schedule) due(seq uint64) time.Duration {
	if s.dues == nil {
		return time.Duration(seq) * s.interval
	}
	if seq < uint64(len(s.dues)) {
		return s.dues[seq]
	}
	return s.dues[len(s.dues)-1]
}

// Pace implements vegeta.Pacer.
func (s *schedule) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if s.dues != nil && hits >= uint64(len(s.dues)) {
		return 0, true
	}
	return max(0, s.due(hits)-elapsed), false
}

// Rate implements vegeta.Pacer: the mean rate, hits per second.
func (s *schedule) Rate(time.Duration) float64 { return float64(s.rate) }

// callbackGen makes distinct signed PUBLISH callbacks: the stream carries the run tag, the
// target's group number and a sequence number, auth_timestamp is the send time.
type callbackGen struct {
	tag   string
	group int
	pubTS int64
	seq   atomic.Uint64
}

func (g *callbackGen) targeter(url string) vegeta.Targeter {
	hdr := http.Header{"Content-Type": []string{"application/json"}}
	return func(t *vegeta.Target) error {
		t.Method, t.URL, t.Header = http.MethodPost, url, hdr
		t.Body = g.body(g.seq.Add(1), time.Now().Unix())
		return nil
	}
}

func (g *callbackGen) body(seq uint64, authTS int64) []byte {
	stream := fmt.Sprintf("%s%s-w%0*d-%0*d", streamHead, g.tag, workerWidth, g.group, seqWidth, seq)
	sign := callback.Sign(olKey, callback.EventPublish, olDomain, "live", stream, authTS)
	return fmt.Appendf(nil,
		`{"domain":"%s","app":"live","stream":"%s","user_args":"%s","client_ip":"116.31.96.221",`+
			`"node_ip":"113.96.102.42","publish_timestamp":"%d","event":"PUBLISH","auth_timestamp":%d,"auth_sign":"%s"}`,
		olDomain, stream, userArgs, g.pubTS, authTS, sign)
}

// responseEventID reads event_id from the archiver's 200 body.
func responseEventID(body []byte) ([16]byte, bool) {
	var id [16]byte
	v := fieldValue(body, `"event_id":"`)
	if len(v) != 32 {
		return id, false
	}
	_, err := hex.Decode(id[:], v)
	return id, err == nil
}

// olPrefix is the archive prefix (in bucket) of an open-loop or overload target.
func (r *runner) olPrefix(name string) string { return "openloop-" + r.tag + "-" + name }

// readEventIDs reads every event_id of a target's archive, like readArchive (independently of
// the archiver's readback package).
func readEventIDs(ctx context.Context, r *runner, name string) (map[[16]byte]struct{}, error) {
	t := newTally(r.tag, len(OpenLoopTargets))
	prefix := r.olPrefix(name) + "/"
	for obj := range r.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, obj.Err)
		}
		if rel := strings.TrimPrefix(obj.Key, prefix); strings.HasPrefix(rel, "_") || !strings.Contains(rel, ".jsonl") {
			continue // _rejected/ samples, digests
		}
		if err := readObject(ctx, r.mc, bucket, obj.Key, t); err != nil {
			return nil, err
		}
	}
	return t.eventIDs, nil
}

// procCPU is the user+system CPU time of pid (all its threads) from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(b)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux ABI Go supports.
const clockTick = 10 * time.Millisecond

// parseProcStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may hold spaces, so fields are counted after its last ')'.
func parseProcStatCPU(b []byte) (time.Duration, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: no command name", s)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var total int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		total += n
	}
	return time.Duration(total) * clockTick, nil
}

// loadAvg is /proc/loadavg's first three fields ("" off Linux).
func loadAvg() string {
	f, err := os.Open("/proc/loadavg")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return ""
	}
	fs := strings.Fields(sc.Text())
	return strings.Join(fs[:min(3, len(fs))], " ")
}
