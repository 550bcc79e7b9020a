package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// readyz is a target's readiness: GET /readyz answers anything but 503 (a 404 means the target
// has no readiness endpoint and is up).
func readyz(addr string) func(context.Context, *proc.Process) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context, _ *proc.Process) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			return fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		return nil
	}
}

// terminate sends SIGTERM and waits up to timeout for the exit; past that it kills the group.
// It returns how long the process took to exit after the signal. Cancelling ctx (Ctrl-C) kills
// it at once.
func terminate(ctx context.Context, p *proc.Process, timeout time.Duration) (time.Duration, error) {
	if !p.Running() {
		return 0, fmt.Errorf("%s had already exited: %v\n%s", p.Name, p.Err(), p.LogTail(30))
	}
	t0 := time.Now()
	err := p.Stop(ctx, syscall.SIGTERM, timeout)
	switch {
	case err == nil:
		return p.Exited().Sub(t0), nil
	case errors.Is(err, proc.ErrKilled):
		return time.Since(t0), fmt.Errorf("%s did not exit within %s of SIGTERM (killed)\n%s", p.Name, timeout, p.LogTail(30))
	default:
		return time.Since(t0), fmt.Errorf("%s killed while draining: %w", p.Name, err)
	}
}

// memStatus reads VmRSS and VmHWM (peak RSS) of pid from /proc, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		fields := bytes.Fields(line[6:])
		if len(fields) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %q: %w", line, err)
		}
		*dst = kb * 1024
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if hwm == 0 {
		return rss, hwm, errors.New("no VmHWM in /proc status")
	}
	return rss, hwm, nil
}

// rssSampler records the maximum VmRSS of a process, sampled every interval until stopped.
type rssSampler struct {
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := memStatus(pid); err == nil && rss > s.max.Load() {
				s.max.Store(rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the maximum seen.
func (s *rssSampler) Stop() int64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.max.Load()
}
