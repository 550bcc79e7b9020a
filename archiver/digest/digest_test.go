package digest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func payload() digest.Payload {
	return digest.Payload{
		Kind: digest.KindHourly, Instance: "host-a", Seq: 3, Start: "2026-11-26T08:00:00.000000000Z", End: "2026-11-26T09:00:00.000000000Z",
		Previous: &digest.Link{Key: "_digests/2026/11/26/host-a/080000-0000000002-hourly.json", SHA256: strings.Repeat("ab", 32)},
		Objects:  []digest.Entry{{Key: "dt=2026-11-26/host-a-00000000000000000001-000.jsonl.gz", Size: 10, SHA256: strings.Repeat("cd", 32), Records: 2, FirstReceivedAt: "2026-11-26T08:00:00.000000001Z", LastReceivedAt: "2026-11-26T08:00:00.000000002Z"}},
	}
}

// TestEncodeDecode: a digest decodes to what was signed, is deterministic, and any change to the
// stored bytes or the wrong public key is a bad signature, never a silent pass.
func TestEncodeDecode(t *testing.T) {
	key := newKey(t)
	b, err := digest.Encode(payload(), key)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := digest.Encode(payload(), key)
	if !bytes.Equal(b, b2) {
		t.Fatal("encoding the same payload twice gave different bytes")
	}
	p, err := digest.Decode(b, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	want := payload()
	want.Version, want.KeyID = digest.Version, digest.KeyID(key.Public().(ed25519.PublicKey))
	gb, _ := json.Marshal(p)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("round trip:\n got %s\nwant %s", gb, wb)
	}
	other := newKey(t)
	cases := []struct {
		name string
		b    []byte
		pub  ed25519.PublicKey
		want error
	}{
		{"wrong key", b, other.Public().(ed25519.PublicKey), digest.ErrBadSignature},
		{"records changed", bytes.Replace(b, []byte(`"records":2`), []byte(`"records":3`), 1), key.Public().(ed25519.PublicKey), digest.ErrBadSignature},
		{"previous hash changed", bytes.Replace(b, []byte("abab"), []byte("abac"), 1), key.Public().(ed25519.PublicKey), digest.ErrBadSignature},
		{"signature cut", bytes.Replace(b, []byte(`"signature":"`), []byte(`"signature":"AA`), 1), key.Public().(ed25519.PublicKey), digest.ErrBadSignature},
		{"not json", []byte("hello"), key.Public().(ed25519.PublicKey), digest.ErrMalformed},
		{"no payload", []byte(`{"signature":"x"}`), key.Public().(ed25519.PublicKey), digest.ErrMalformed},
		{"version 0", []byte(`{"payload":{"version":0},"signature":""}`), key.Public().(ed25519.PublicKey), digest.ErrMalformed},
		{"future version", []byte(`{"payload":{"version":3},"signature":""}`), key.Public().(ed25519.PublicKey), digest.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := digest.Decode(c.b, c.pub)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// The wrong-key message names both fingerprints, so the operator knows which key to fetch.
	_, err = digest.Decode(b, other.Public().(ed25519.PublicKey))
	if !strings.Contains(err.Error(), digest.KeyID(key.Public().(ed25519.PublicKey))) {
		t.Errorf("wrong-key error does not name the signing key: %v", err)
	}
}

// TestEmptyHourListsNoObjects: an empty hour is "objects":[] (a digest, not silence).
func TestEmptyHourListsNoObjects(t *testing.T) {
	p := payload()
	p.Objects = nil
	b, err := digest.Encode(p, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"objects":[]`)) {
		t.Fatalf("empty digest: %s", b)
	}
}

func TestDescribe(t *testing.T) {
	at := func(ns int) layout.Archive {
		return layout.Archive{ReceivedAt: time.Date(2026, 11, 26, 8, 0, 0, ns, time.UTC), EventID: "e", Signature: "none", Instance: "i"}
	}
	var lines []byte
	lines = layout.AppendRecord(lines, []byte(`{"a":1}`), at(3))
	lines = layout.AppendRecord(lines, []byte(`{"a":2,"x":"\"archive\":{\"received_at\":\"9"}`), at(1)) // sender-made look-alike
	lines = layout.AppendRecord(lines, []byte(`{}`), at(2))
	gz, _ := layout.EncodeObject(lines, true)
	for _, c := range []struct {
		key  string
		body []byte
	}{
		{"dt=2026-11-26/i-00000000000000000001-000.jsonl.gz", gz},
		{"dt=2026-11-26/i-00000000000000000001-000.jsonl", lines},
	} {
		e, err := digest.Describe(c.key, c.body)
		if err != nil {
			t.Fatal(err)
		}
		if e.Records != 3 || e.FirstReceivedAt != "2026-11-26T08:00:00.000000001Z" || e.LastReceivedAt != "2026-11-26T08:00:00.000000003Z" || e.SHA256 != digest.Sum(c.body) || e.Size != int64(len(c.body)) {
			t.Errorf("%s: %+v", c.key, e)
		}
	}
	e, err := digest.Describe("_rejected/dt=2026-11-26/i-00000000000000000001.json", []byte(`{"x":1}`))
	if err != nil || e.Records != 0 || e.Size != 7 {
		t.Errorf("rejected sample: %+v %v", e, err)
	}
	if _, err := digest.Describe("dt=2026-11-26/i-00000000000000000001-000.jsonl.gz", []byte("not gzip")); err == nil {
		t.Error("a .jsonl.gz that is not gzip described without error")
	}
}

func fileStore(t *testing.T) storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestChainAcrossRestarts: a new process continues its instance's chain, each digest linking to
// the SHA-256 of the previous file; another instance's chain is separate; a recorded object is
// listed once even when its Put was retried.
func TestChainAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	now := time.Now().UTC()
	var keys []string
	for run := 0; run < 3; run++ {
		c, err := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (c.Previous() == nil) != (run == 0) {
			t.Fatalf("run %d: previous %+v", run, c.Previous())
		}
		rec := digest.NewRecorder(st, nil, nil)
		w := &digest.Writer{Recorder: rec, Chain: c}
		w.Start()
		obj := layout.ObjectKey(layout.Day(now, nil), "host-a", uint64(run+1), 0, false)
		body := layout.AppendRecord(nil, []byte(`{"a":1}`), layout.Archive{ReceivedAt: now})
		for range 2 { // a retried Put of the same bytes
			if err := rec.Put(ctx, obj, body, layout.ContentType); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, c.Previous().Key)
	}
	// Another instance: its own chain.
	c, _ := digest.OpenChain(ctx, st, key, "host-b", now, time.Time{}, nil)
	if c.Previous() != nil {
		t.Fatalf("host-b continues %+v", c.Previous())
	}
	var prev []byte
	for i, k := range keys {
		b := readKey(t, st, k)
		p, err := digest.Decode(b, pub)
		if err != nil {
			t.Fatal(err)
		}
		if p.Seq != uint64(i+1) || p.Kind != digest.KindShutdown || len(p.Objects) != 1 || p.Objects[0].Records != 1 {
			t.Errorf("digest %d: %+v", i, p)
		}
		if i == 0 && p.Previous != nil || i > 0 && (p.Previous == nil || p.Previous.Key != keys[i-1] || p.Previous.SHA256 != digest.Sum(prev)) {
			t.Errorf("digest %d links to %+v", i, p.Previous)
		}
		prev = b
	}
}

// TestWriterEmptyIntervals: the writer writes a digest every interval even when nothing was stored.
func TestWriterEmptyIntervals(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	key := newKey(t)
	c, err := digest.OpenChain(ctx, st, key, "idle", time.Now(), time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c, Interval: 100 * time.Millisecond}
	w.Start()
	time.Sleep(450 * time.Millisecond)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, digest.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	hourly := 0
	for _, o := range objs {
		p, err := digest.Decode(readKey(t, st, o.Key), key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind == digest.KindHourly {
			hourly++
		}
	}
	if hourly < 3 {
		t.Fatalf("%d interval digests in 450ms at 100ms, want >= 3", hourly)
	}
}

func readKey(t *testing.T, st storage.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	return buf.Bytes()
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	key := newKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	priv := filepath.Join(dir, "key.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pder, _ := x509.MarshalPKIXPublicKey(key.Public())
	pubf := filepath.Join(dir, "pub.pem")
	os.WriteFile(pubf, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END PRIVATE KEY-----\n"), 0o600)

	if k, err := digest.LoadPrivateKey(priv); err != nil || !k.Equal(key) {
		t.Fatalf("private: %v", err)
	}
	for _, f := range []string{pubf, priv} {
		if p, err := digest.LoadPublicKey(f); err != nil || !p.Equal(key.Public()) {
			t.Fatalf("public from %s: %v", f, err)
		}
	}
	for _, f := range []string{junk, pubf, filepath.Join(dir, "missing.pem")} {
		_, err := digest.LoadPrivateKey(f)
		if err == nil {
			t.Fatalf("%s accepted as a private key", f)
		}
		if strings.Contains(err.Error(), "c2VjcmV0") {
			t.Fatalf("error quotes the key file: %v", err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	b, _ := digest.Encode(payload(), key)
	f.Add(b)
	f.Add([]byte(`{"payload":{"version":1},"signature":""}`))
	f.Add([]byte(`{"payload":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := digest.Decode(b, key.Public().(ed25519.PublicKey))
		if err == nil && p.Version != digest.Version {
			t.Fatalf("accepted version %d", p.Version)
		}
		_, _ = digest.Describe("dt=2026-11-26/x-00000000000000000001-000.jsonl.gz", b)
		_, _ = digest.Describe("dt=2026-11-26/x-00000000000000000001-000.jsonl", b)
	})
}

// lostAnswerStore stores every Put but reports the first digest Put as failed, like an S3 PUT
// whose answer was cut off after the server kept the object.
type lostAnswerStore struct {
	storage.Store
	lost bool
}

func (s *lostAnswerStore) Put(ctx context.Context, key string, body []byte, contentType string) error {
	err := s.Store.Put(ctx, key, body, contentType)
	if err == nil && !s.lost && strings.HasPrefix(key, digest.Prefix) {
		s.lost = true
		return errors.New("connection reset after the request was sent")
	}
	return err
}

// TestChainUnsentDigestIsRetriedNotRemade: a digest whose Put failed (perhaps after the store kept
// it) is stored unchanged before the next one, its entries are not listed twice, and the chain
// does not fork (two digests with one sequence number).
func TestChainUnsentDigestIsRetriedNotRemade(t *testing.T) {
	ctx := context.Background()
	st := &lostAnswerStore{Store: fileStore(t)}
	key := newKey(t)
	now := time.Now().UTC()
	c, err := digest.OpenChain(ctx, st, key, "host-a", now, time.Time{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := digest.NewRecorder(st, nil, nil)
	w := &digest.Writer{Recorder: rec, Chain: c, Interval: time.Hour}
	w.Start()
	obj := layout.ObjectKey(layout.Day(now, nil), "host-a", 1, 0, false)
	if err := rec.Put(ctx, obj, layout.AppendRecord(nil, []byte(`{"a":1}`), layout.Archive{ReceivedAt: now}), layout.ContentType); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(ctx, digest.KindHourly); !errors.Is(err, digest.ErrUnsent) {
		t.Fatalf("first flush: %v, want ErrUnsent", err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(ctx, digest.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[uint64]int{}
	listed := 0
	for _, o := range objs {
		p, err := digest.Decode(readKey(t, st, o.Key), key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		seqs[p.Seq]++
		listed += len(p.Objects)
	}
	if len(objs) != 2 || seqs[1] != 1 || seqs[2] != 1 || listed != 1 {
		t.Fatalf("%d digests, sequence numbers %v, %d objects listed; want seq 1 and 2 once each and the object listed once", len(objs), seqs, listed)
	}
}

// TestRetainerRecordsNothing: with retention but no digests, every Put gets its retention and
// nothing is kept for a digest that would never be written (it would only grow).
func TestRetainerRecordsNothing(t *testing.T) {
	ctx := context.Background()
	retained := 0
	r := digest.NewRetainer(fileStore(t), func(context.Context, string) error { retained++; return nil })
	now := time.Now().UTC()
	for i := range 3 {
		obj := layout.ObjectKey(layout.Day(now, nil), "host-a", uint64(i+1), 0, false)
		if err := r.Put(ctx, obj, layout.AppendRecord(nil, []byte(`{"a":1}`), layout.Archive{ReceivedAt: now}), layout.ContentType); err != nil {
			t.Fatal(err)
		}
	}
	if retained != 3 || len(r.Take()) != 0 {
		t.Fatalf("retained %d, recorded %d; want 3 and 0", retained, len(r.Take()))
	}
}

// TestWriterOnFlushReportsRetentionFailure: a digest whose Put succeeds but whose retention fails
// is reported to OnFlush as failed, never as written; once retention works, as written (also the
// shutdown digest).
func TestWriterOnFlushReportsRetentionFailure(t *testing.T) {
	ctx := context.Background()
	st := fileStore(t)
	var refuse atomic.Bool
	refuse.Store(true)
	retain := func(_ context.Context, key string) error {
		if refuse.Load() && digest.IsKey(key) {
			return errors.New("injected: retention refused")
		}
		return nil
	}
	c, err := digest.OpenChain(ctx, st, newKey(t), "locked", time.Now(), time.Time{}, retain)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var outcomes []error
	w := &digest.Writer{Recorder: digest.NewRecorder(st, retain, nil), Chain: c, Interval: 50 * time.Millisecond,
		OnFlush: func(err error) { mu.Lock(); outcomes = append(outcomes, err); mu.Unlock() }}
	count := func() (ok, failed int) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range outcomes {
			if e == nil {
				ok++
			} else {
				failed++
			}
		}
		return ok, failed
	}
	w.Start()
	deadline := time.Now().Add(10 * time.Second)
	for _, f := count(); f < 2 && time.Now().Before(deadline); _, f = count() {
		time.Sleep(10 * time.Millisecond)
	}
	if ok, failed := count(); ok != 0 || failed < 2 {
		t.Fatalf("%d written, %d failed while retention fails; want 0 written, >= 2 failed", ok, failed)
	}
	refuse.Store(false)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	last := outcomes[len(outcomes)-1]
	mu.Unlock()
	if last != nil {
		t.Fatalf("shutdown digest reported %v, want nil", last)
	}
}

// TestStartNewChain: StartNewChain stores the chain's first digest before it returns: kind start,
// seq 1, an empty span, no objects, the other chains' heads witnessed; the next digest's span
// begins where it ended. A start digest whose answer was lost is reported to OnFlush as failed and
// stored unchanged before the next digest (no second seq 1).
func TestStartNewChain(t *testing.T) {
	for _, lose := range []bool{false, true} {
		t.Run(map[bool]string{false: "stored", true: "answer lost"}[lose], func(t *testing.T) {
			ctx := context.Background()
			base := fileStore(t)
			key := newKey(t)
			pub := key.Public().(ed25519.PublicKey)
			now := time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC) // the next interval is 30 minutes off
			other, _ := digest.OpenChain(ctx, base, key, "host-old", now, time.Time{}, nil)
			otherHead, err := other.Write(ctx, digest.Payload{Kind: digest.KindShutdown, Start: digest.FormatTime(now.Add(-time.Hour)), End: digest.FormatTime(now), CreatedAt: digest.FormatTime(now)}, now)
			if err != nil {
				t.Fatal(err)
			}
			st := &lostAnswerStore{Store: base, lost: !lose}
			c, err := digest.OpenChain(ctx, st, key, "host-new", now, time.Time{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.Witness()
			var outcomes []error
			w := &digest.Writer{Recorder: digest.NewRecorder(st, nil, nil), Chain: c, Interval: time.Hour,
				Now: func() time.Time { return now }, OnFlush: func(err error) { outcomes = append(outcomes, err) }}
			w.StartNewChain(ctx)
			objs, err := base.List(ctx, digest.InstancePrefix(now, "host-new"))
			if err != nil || len(objs) != 1 {
				t.Fatalf("after StartNewChain: %v %v; want the start digest stored", objs, err)
			}
			first, err := digest.Decode(readKey(t, base, objs[0].Key), pub)
			if err != nil {
				t.Fatal(err)
			}
			if first.Kind != digest.KindStart || first.Seq != 1 || first.Previous != nil || first.Start != first.End || len(first.Objects) != 0 {
				t.Fatalf("start digest %+v; want kind start, seq 1, no link, an empty span, no objects", first)
			}
			if len(first.Witness) != 1 || first.Witness[0].Key != otherHead {
				t.Fatalf("start digest witnesses %+v, want %s", first.Witness, otherHead)
			}
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if len(outcomes) != 2 || (outcomes[0] != nil) != lose || outcomes[1] != nil {
				t.Fatalf("OnFlush got %v; want the start digest's outcome (failed: %v), then the shutdown digest's", outcomes, lose)
			}
			objs, _ = base.List(ctx, digest.InstancePrefix(now, "host-new"))
			if len(objs) != 2 {
				t.Fatalf("%d digests, want the start and the shutdown digest", len(objs))
			}
			var last digest.Payload
			for _, o := range objs {
				if p, err := digest.Decode(readKey(t, base, o.Key), pub); err == nil && p.Seq == 2 {
					last = p
				}
			}
			if last.Kind != digest.KindShutdown || last.Start != first.End || last.Previous == nil || last.Previous.Key != first.Key {
				t.Fatalf("second digest %+v; want the shutdown digest, from the start digest's end, linked to it", last)
			}
		})
	}
}
