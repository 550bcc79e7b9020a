package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// TestDigestsWrittenEveryIntervalAndAtShutdown: with a digest key the archiver (S3, both ack
// modes) writes a digest every interval, also when nothing was stored, and one at shutdown; every
// object and rejected sample is listed, so the day verifies.
func TestDigestsWrittenEveryIntervalAndAtShutdown(t *testing.T) {
	for _, ack := range []string{server.AckStore, server.AckSpool} {
		t.Run(ack, func(t *testing.T) {
			e := newEnv(t, nil)
			kf, key := digestKeyFile(t)
			c := e.config(t)
			c.Ack, c.FlushInterval, c.Instance = ack, 20*time.Millisecond, "dg-"+ack
			c.Digest.Key, c.Digest.Interval = kf, 200*time.Millisecond
			s := start(t, c)
			for _, b := range [][]byte{
				archivetest.Event("d.example.com", "s1", "PUBLISH", 1_700_000_001),
				archivetest.Event("d.example.com", "s2", "PUBLISH", 1_700_000_002),
				[]byte(`{"broken`),
			} {
				archivetest.Post(t, s.URL()+"/callback", b)
			}
			time.Sleep(700 * time.Millisecond) // several intervals, the later ones empty
			stop(t, s)

			ctx := context.Background()
			objs, err := e.store.List(ctx, digest.Prefix)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]int{}
			empty := 0
			for _, o := range objs {
				rc, err := e.store.Get(ctx, o.Key)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(rc)
				rc.Close()
				p, err := digest.Decode(b, key.Public().(ed25519.PublicKey))
				if err != nil {
					t.Fatalf("%s: %v", o.Key, err)
				}
				kinds[p.Kind]++
				if len(p.Objects) == 0 {
					empty++
				}
				if !strings.HasPrefix(o.Key, digest.Prefix) || strings.HasPrefix(o.Key, "dt=") {
					t.Errorf("digest under %s", o.Key)
				}
			}
			if kinds[digest.KindHourly] < 2 || kinds[digest.KindShutdown] != 1 || empty == 0 {
				t.Fatalf("digests by kind %v, %d empty", kinds, empty)
			}
			ps, sum, err := verify.Verify(ctx, e.store, verify.Options{From: layout.Day(time.Now(), nil), PublicKey: key.Public().(ed25519.PublicKey)})
			if err != nil || len(ps) != 0 {
				t.Fatalf("verify: %v %+v", err, ps)
			}
			if sum.Events != 2 || sum.Objects < 2 || len(archivetest.Keys(t, e.store, "_rejected/")) != 1 {
				t.Fatalf("summary %+v (want the 2 events and the rejected sample)", sum)
			}
		})
	}
}

// TestDeletedHourlyTail: the newest hourly digest of a running instance deleted with the objects
// it listed: the instance's next digest says so in an ERROR log and links to the missing one, so
// verify reports the chain broken at once (no need to wait for the 70-minute tail check).
func TestDeletedHourlyTail(t *testing.T) {
	e := newEnv(t, nil)
	kf, key := digestKeyFile(t)
	c := e.config(t)
	var logs lockedBuffer
	c.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c.Ack, c.FlushInterval, c.Instance = server.AckSpool, 20*time.Millisecond, "tail"
	c.Digest.Key, c.Digest.Interval = kf, 300*time.Millisecond
	s := start(t, c)
	ctx := context.Background()
	pub := key.Public().(ed25519.PublicKey)
	hourly := func() (newest string, p digest.Payload, n int) {
		objs, _ := e.store.List(ctx, digest.Prefix)
		for _, o := range objs {
			b, err := storage.ReadAll(ctx, e.store, o.Key)
			if err != nil {
				continue
			}
			q, err := digest.Decode(b, pub)
			if err == nil && q.Kind == digest.KindHourly {
				n++
				if q.Seq > p.Seq {
					newest, p = o.Key, q
				}
			}
		}
		return newest, p, n
	}
	for i := range 3 {
		archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "tail", "PUBLISH", int64(1_700_000_000+i)))
		time.Sleep(150 * time.Millisecond)
	}
	archivetest.Eventually(t, 10*time.Second, "two hourly digests", func() bool { _, _, n := hourly(); return n >= 2 })
	victim, p, _ := hourly()
	for _, o := range p.Objects {
		if err := e.store.(storage.Deleter).Delete(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.(storage.Deleter).Delete(ctx, victim); err != nil {
		t.Fatal(err)
	}
	archivetest.Eventually(t, 10*time.Second, "the ERROR log naming the deleted digest", func() bool {
		return strings.Contains(logs.String(), `"level":"ERROR"`) && strings.Contains(logs.String(), victim)
	})
	stop(t, s)
	ps, _, err := verify.Verify(ctx, e.store, verify.Options{From: layout.Day(time.Now(), nil), PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) == 0 || ps[0].Kind != verify.ChainBroken || !strings.Contains(ps[0].Detail, victim) {
		t.Fatalf("verify: %+v", ps)
	}
	for _, p := range ps {
		if p.Kind != verify.ChainBroken {
			t.Errorf("unexpected %+v", p)
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStartDigestWitnessesPreviousProcess: a store-mode process starts a new chain and at once
// writes a start digest (empty span) witnessing the other chains, so the previous process's chain,
// wiped with its objects after the restart, is reported chain_broken, both while the new process
// runs and after it stopped, instead of the new chain passing for the archive's beginning.
func TestStartDigestWitnessesPreviousProcess(t *testing.T) {
	e := newEnv(t, nil)
	kf, key := digestKeyFile(t)
	pub := key.Public().(ed25519.PublicKey)
	ctx := context.Background()
	c := e.config(t)
	c.Ack, c.FlushInterval, c.Instance = server.AckStore, 20*time.Millisecond, "ws"
	c.Digest.Key = kf // hourly: only the start and shutdown digests are written here

	s := start(t, c)
	archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "wiped", "PUBLISH", 1_700_000_001))
	stop(t, s)
	previous := archivetest.Keys(t, e.store, "")
	var head string
	var headSeq uint64
	kinds := map[string]int{}
	for _, k := range previous {
		if !strings.HasPrefix(k, digest.Prefix) {
			continue
		}
		p := readDigest(t, e.store, k, pub)
		kinds[p.Kind]++
		if p.Seq > headSeq {
			head, headSeq = k, p.Seq
		}
		if p.Kind == digest.KindStart && (p.Start != p.End || len(p.Objects) != 0 || p.Seq != 1) {
			t.Errorf("start digest %s: span %s..%s, %d objects, seq %d; want an empty span, no objects, seq 1", k, p.Start, p.End, len(p.Objects), p.Seq)
		}
	}
	if kinds[digest.KindStart] != 1 || kinds[digest.KindShutdown] != 1 {
		t.Fatalf("the first process wrote digests %v; want one start and one shutdown digest", kinds)
	}

	s = start(t, c) // a new chain: its start digest is stored before start returns
	for _, k := range previous {
		if err := e.store.(storage.Deleter).Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		ps, _, err := verify.Verify(ctx, e.store, verify.Options{From: layout.Day(time.Now(), nil), PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Kind == verify.ChainBroken && p.Key == head {
				return
			}
		}
		t.Fatalf("%s: no chain_broken naming the wiped chain's head %s: %+v", when, head, ps)
	}
	check("while the new process runs")
	stop(t, s)
	check("after the new process stopped")
}

// TestSpoolFirstChainStartDigest: a spool-mode instance on a fresh spool (its chain begins: no
// journal head, no digest of its own in the store) writes a start digest before it takes callbacks,
// witnessing the other instances' chains, so one wiped while it runs is reported chain_broken at
// once, not only after its first hourly digest. A restart on the same spool continues the chain
// (through the journal) and writes no second start digest: its digests link on from the first run's.
func TestSpoolFirstChainStartDigest(t *testing.T) {
	e := newEnv(t, nil)
	kf, key := digestKeyFile(t)
	pub := key.Public().(ed25519.PublicKey)
	ctx := context.Background()
	digests := func() map[string]digest.Payload {
		t.Helper()
		out := map[string]digest.Payload{}
		for _, k := range archivetest.Keys(t, e.store, digest.Prefix) {
			out[k] = readDigest(t, e.store, k, pub)
		}
		return out
	}

	// Another instance ran before and stopped: its chain ends with a shutdown digest.
	a := e.config(t)
	a.Ack, a.FlushInterval, a.Instance, a.Digest.Key = server.AckSpool, 20*time.Millisecond, "sa", kf // hourly: no digest but start and shutdown here
	s := start(t, a)
	archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "wiped", "PUBLISH", 1_700_000_001))
	stop(t, s)
	previous := archivetest.Keys(t, e.store, "")
	var head string
	var headSeq uint64
	for k, p := range digests() {
		if p.Seq > headSeq {
			head, headSeq = k, p.Seq
		}
	}

	// A new instance on a fresh spool: its start digest is stored before start returns.
	b := e.config(t)
	b.Ack, b.FlushInterval, b.Instance, b.Digest.Key = server.AckSpool, 20*time.Millisecond, "sb", kf
	s = start(t, b)
	var first string
	for k, p := range digests() {
		if slices.Contains(previous, k) || p.Kind == digest.KindHourly { // hourly: the test crossed an hour
			continue
		}
		if first != "" {
			t.Fatalf("the new instance wrote digests %s and %s at start; want one start digest", first, k)
		}
		first = k
		if p.Kind != digest.KindStart || p.Seq != 1 || p.Previous != nil || p.Start != p.End || len(p.Objects) != 0 {
			t.Fatalf("the new instance's first digest %s: %+v; want a start digest, seq 1, no link, an empty span, no objects", k, p)
		}
		if len(p.Witness) != 1 || p.Witness[0].Key != head {
			t.Fatalf("start digest witnesses %+v, want the other instance's head %s", p.Witness, head)
		}
	}
	if first == "" {
		t.Fatal("the new instance on a fresh spool wrote no start digest at start")
	}
	chain := digests()[first].Instance
	archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "kept", "PUBLISH", 1_700_000_002))
	for _, k := range previous {
		if err := e.store.(storage.Deleter).Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	ps, _, err := verify.Verify(ctx, e.store, verify.Options{From: layout.Day(time.Now(), nil), PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ps, func(p verify.Problem) bool { return p.Kind == verify.ChainBroken && p.Key == head }) {
		t.Fatalf("while the new instance runs: no chain_broken naming the wiped chain's head %s: %+v", head, ps)
	}
	stop(t, s)

	// A restart on the same spool continues the chain: nothing is written at start.
	starts := func() (n int) {
		for _, p := range digests() {
			if p.Kind == digest.KindStart {
				n++
			}
		}
		return n
	}
	before := starts()
	s = start(t, b)
	if after := starts(); after != before {
		t.Fatalf("the restart wrote a start digest (%d -> %d); a continuing chain writes none", before, after)
	}
	archivetest.Post(t, s.URL()+"/callback", archivetest.Event("d.example.com", "kept", "PUBLISH", 1_700_000_003))
	stop(t, s)
	var kinds []string
	bySeq := map[uint64]string{}
	for k, p := range digests() {
		if p.Instance == chain {
			bySeq[p.Seq] = k
		}
	}
	all := digests()
	for seq := uint64(1); seq <= uint64(len(bySeq)); seq++ {
		k, ok := bySeq[seq]
		if !ok {
			t.Fatalf("chain %s has no digest #%d: %v", chain, seq, bySeq)
		}
		p := all[k]
		if seq > 1 && (p.Previous == nil || p.Previous.Key != bySeq[seq-1]) {
			t.Fatalf("digest #%d %s links to %+v, want %s", seq, k, p.Previous, bySeq[seq-1])
		}
		if p.Kind != digest.KindHourly { // the test crossed an hour
			kinds = append(kinds, p.Kind)
		}
	}
	if want := []string{digest.KindStart, digest.KindShutdown, digest.KindShutdown}; !slices.Equal(kinds, want) {
		t.Fatalf("chain %s: digests %v, want %v (one start digest, then a shutdown digest per run)", chain, kinds, want)
	}
	ps, _, err = verify.Verify(ctx, e.store, verify.Options{From: layout.Day(time.Now(), nil), PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		// Uncovered: the wiped chain's hours of today, if any ended before this test.
		if !(p.Kind == verify.ChainBroken && p.Key == head) && p.Kind != verify.Uncovered {
			t.Errorf("after the restart: %+v; want only the wiped chain reported", p)
		}
	}
}

// digestKeyFile writes a new Ed25519 digest key as PEM (PKCS#8, as --digest-key takes it).
func digestKeyFile(t *testing.T) (string, ed25519.PrivateKey) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return kf, key
}

// readDigest reads and checks the digest stored under key.
func readDigest(t *testing.T, st storage.Store, key string, pub ed25519.PublicKey) digest.Payload {
	t.Helper()
	b, err := storage.ReadAll(context.Background(), st, key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := digest.Decode(b, pub)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return p
}
