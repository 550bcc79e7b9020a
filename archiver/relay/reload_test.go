package relay

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/sink"
	"github.com/livehook/terraform-provider-livehook/archiver/spool"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// A reload with the same configuration but a renewed ca_file (same path, other bytes) rebuilds
// the destination's client, which then trusts the new CA; an unchanged CA keeps the worker.
func TestReloadRebuildsClientWhenCAFileChanges(t *testing.T) {
	t.Parallel()
	oneCert, _ := archivetest.SelfSignedCert(t, "one")
	twoCert, twoKey := archivetest.SelfSignedCert(t, "two")
	td := tlsRelay(t, twoCert, twoKey, oneCert, func(http.ResponseWriter, *http.Request) {})
	r, ca, dests := td.r, td.ca, td.dests
	r.Start()
	defer r.Close()
	current := func() *worker {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.workers["biz"]
	}
	get := func(w *worker) error {
		resp, err := w.snd.client.Get(td.url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	w1 := current()
	if err := get(w1); err == nil {
		t.Fatal("the client trusting CA one accepted the server of CA two")
	}
	if err := r.Reload(dests); err != nil {
		t.Fatal(err)
	}
	if current() != w1 {
		t.Error("an unchanged destination and CA restarted its worker")
	}
	if err := os.WriteFile(ca, twoCert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(dests); err != nil {
		t.Fatal(err)
	}
	w2 := current()
	if w2 == w1 {
		t.Fatal("a renewed ca_file kept the old client")
	}
	if err := get(w2); err != nil {
		t.Errorf("the rebuilt client does not trust the renewed CA: %v", err)
	}
}

// A reload whose new ca_file cannot be used (garbage, or unreadable mid-rotation) reports the
// error and keeps the running worker, which goes on delivering with its previous client; it
// does not park the destination until the next good reload.
func TestReloadKeepsDestinationWhenRebuildFails(t *testing.T) {
	t.Parallel()
	cert, key := archivetest.SelfSignedCert(t, "one")
	got := make(chan string, 10)
	td := tlsRelay(t, cert, key, cert, func(_ http.ResponseWriter, req *http.Request) {
		got <- req.Header.Get(HeaderEventID)
	})
	r, sp, ca, dests := td.r, td.sp, td.ca, td.dests
	sp.SetRetainer(r)
	r.Start()
	defer r.Close()
	current := func() *worker {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.workers["biz"]
	}
	body := archivetest.Compact(t, archivetest.Sample(t, "signed-publish.json"))
	deliver := func(id string) {
		t.Helper()
		e := sink.NewEntry()
		e.Day, e.ReceivedAt = "2026-01-02", time.Now()
		e.Line = layout.AppendRecord(nil, body, layout.Archive{ReceivedAt: e.ReceivedAt, EventID: id, Instance: "i1"})
		if err := sp.Submit(e); err != nil {
			t.Fatal(err)
		}
		if err := <-e.Done; err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("delivered %s, want %s", g, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %s not delivered", id)
		}
	}

	w1 := current()
	deliver("0123456789abcdef0123456789abcde1")
	for _, bad := range []func() error{
		func() error { return os.WriteFile(ca, []byte("not a certificate\n"), 0o600) },
		func() error { return os.Remove(ca) },
	} {
		if err := bad(); err != nil {
			t.Fatal(err)
		}
		if err := r.Reload(dests); err == nil {
			t.Error("a reload with an unusable ca_file reported no error")
		}
		if w := current(); w != w1 {
			t.Fatalf("a failed rebuild replaced or stopped the running worker: %p, want %p", w, w1)
		}
	}
	deliver("0123456789abcdef0123456789abcde2")
}

// tlsDest is a relay (not started) on a new spool with one destination "biz", a TLS server.
type tlsDest struct {
	r     *Relay
	sp    *spool.Spool
	ca    string // the destination's ca_file
	url   string // the server's
	dests []Destination
}

// tlsRelay starts a TLS server with the certificate and key, and a relay for it whose ca_file
// holds caPEM.
func tlsRelay(t *testing.T, cert, key, caPEM []byte, h http.HandlerFunc) tlsDest {
	t.Helper()
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dests, err := ParseConfig("forward.yaml", []byte("destinations:\n  - name: biz\n    url: "+srv.URL+"/cb\n    ca_file: "+ca+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(context.Background(), spool.Options{Dir: filepath.Join(dir, "spool"), Instance: "i1", FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sp.Close(context.Background()) })
	r, err := New(Options{Spool: sp, Dir: filepath.Join(dir, "relay"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, dests)
	if err != nil {
		t.Fatal(err)
	}
	return tlsDest{r: r, sp: sp, ca: ca, url: srv.URL, dests: dests}
}
