package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// EmulatorControl talks to a running emulator's control API (/_emulator/..., no auth).
type EmulatorControl struct {
	Base   string // http://127.0.0.1:PORT
	client *http.Client
}

// NewEmulatorControl returns a control-API client for the emulator at base.
func NewEmulatorControl(base string) *EmulatorControl {
	// A publish call delivers the callback synchronously (with retries): allow for that.
	return &EmulatorControl{Base: base, client: &http.Client{Timeout: 60 * time.Second}}
}

// do sends in as JSON (when non-nil) and decodes a JSON answer into out. A non-2xx status is an
// error unless the caller lists it in accept (it gives it a meaning); a 404's body is not decoded.
func (c *EmulatorControl) do(ctx context.Context, method, path string, in, out any, accept ...int) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("emulator %s %s: reading the answer: %w", method, path, err)
	}
	st := resp.StatusCode
	if st/100 != 2 && !slices.Contains(accept, st) {
		return st, fmt.Errorf("emulator %s %s answered %d: %.300s", method, path, st, bytes.TrimSpace(b))
	}
	if out != nil && st != http.StatusNotFound && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return st, fmt.Errorf("emulator %s %s: answer is not the expected JSON (%w): %.200s", method, path, err, b)
		}
	}
	return st, nil
}

// Config returns the domain's notification config; ok is false when it has none.
func (c *EmulatorControl) Config(ctx context.Context, domain string) (n emulator.Notification, ok bool, err error) {
	st, err := c.do(ctx, http.MethodGet, "/_emulator/configs?domain="+url.QueryEscape(domain), nil, &n, http.StatusNotFound)
	return n, err == nil && st == http.StatusOK, err
}

// SetConfig replaces domain's publish notification config behind the provider's back
// (PUT /_emulator/configs), as a change in the Live console would.
func (c *EmulatorControl) SetConfig(ctx context.Context, domain string, n emulator.Notification) error {
	_, err := c.do(ctx, http.MethodPut, "/_emulator/configs?domain="+url.QueryEscape(domain), n, nil)
	return err
}

// Publish fires PUBLISH for s; an undelivered callback is an error (the report is returned too).
func (c *EmulatorControl) Publish(ctx context.Context, s emulator.Stream) (*emulator.Report, error) {
	return c.fire(ctx, "publish", s)
}

// PublishDone fires PUBLISH_DONE for s (its PUBLISH must have come first).
func (c *EmulatorControl) PublishDone(ctx context.Context, s emulator.Stream) (*emulator.Report, error) {
	return c.fire(ctx, "publish_done", s)
}

func (c *EmulatorControl) fire(ctx context.Context, kind string, s emulator.Stream) (*emulator.Report, error) {
	var r emulator.Report
	st, err := c.do(ctx, http.MethodPost, "/_emulator/"+kind, s, &r, http.StatusNotFound, http.StatusBadGateway)
	if err != nil {
		return nil, err
	}
	if st == http.StatusNotFound {
		return nil, fmt.Errorf("emulator has no /_emulator/%s", kind)
	}
	if st == http.StatusBadGateway || !r.Delivered {
		last := ""
		if n := len(r.Attempts); n > 0 {
			a := r.Attempts[n-1]
			last = fmt.Sprintf("; last attempt: status %d %s", a.Status, a.Error)
		}
		return &r, fmt.Errorf("emulator could not deliver %s of %s/%s to %s after %d attempts%s",
			kind, s.App, s.Stream, r.URL, len(r.Attempts), last)
	}
	return &r, nil
}

// Deliveries lists every callback the emulator sent (or tried to).
func (c *EmulatorControl) Deliveries(ctx context.Context) ([]emulator.Delivery, error) {
	var ds []emulator.Delivery
	_, err := c.do(ctx, http.MethodGet, "/_emulator/deliveries", nil, &ds)
	return ds, err
}

// Stats reads the management API counters.
func (c *EmulatorControl) Stats(ctx context.Context) (emulator.Stats, error) {
	var s emulator.Stats
	_, err := c.do(ctx, http.MethodGet, "/_emulator/stats", nil, &s)
	return s, err
}
