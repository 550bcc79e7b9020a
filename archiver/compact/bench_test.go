package compact_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/storage"
	"github.com/livehook/terraform-provider-livehook/archiver/verify"
)

// BenchmarkMillionDay measures the integrity cost for one day of a million callbacks received by
// two replicas (one object per replica every 10s, the --flush-interval default; 2% of callbacks
// redelivered to both): digest objects and bytes, and how long verify and compact take. Run it with
//
//	go test ./archiver/compact -run '^$' -bench MillionDay -benchtime 1x
//
// With LIVEHOOK_MILLION_DIR=DIR it only generates the day into the file store DIR/store, with the
// key pair in DIR, and prints the archiver commands that verify and compact it.
func BenchmarkMillionDay(b *testing.B) {
	keep := os.Getenv("LIVEHOOK_MILLION_DIR")
	const (
		callbacks = 1_000_000
		interval  = 10 * time.Second
		redeliver = 50 // every 50th callback reaches both replicas
	)
	ctx := context.Background()
	for range b.N {
		st := openStore(b)
		_, key, _ := ed25519.GenerateKey(rand.Reader)
		if keep != "" {
			st = keepStore(b, keep, key)
		}
		pub := key.Public().(ed25519.PublicKey)
		start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		replicas := []string{"ra", "rb"}
		type rep struct {
			rec   *digest.Recorder
			chain *digest.Chain
			seq   uint64
			lines []byte
			last  time.Time
		}
		reps := map[string]*rep{}
		for _, r := range replicas {
			c, err := digest.OpenChain(ctx, st, key, r, start, time.Time{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			c.Witness() // as archiver serve: each digest names the other replica's head
			reps[r] = &rep{rec: digest.NewRecorder(st, nil, nil), chain: c, last: start}
		}
		flushObj := func(r string) {
			p := reps[r]
			if len(p.lines) == 0 {
				return
			}
			p.seq++
			body, err := layout.EncodeObject(p.lines, true)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.rec.Put(ctx, layout.ObjectKey("2026-11-20", r, p.seq, 0, true), body, layout.ContentType); err != nil {
				b.Fatal(err)
			}
			p.lines = p.lines[:0]
		}
		writeDigest := func(r, kind string, end time.Time) {
			p := reps[r]
			if _, err := p.chain.Write(ctx, digest.Payload{Kind: kind, Start: digest.FormatTime(p.last), End: digest.FormatTime(end), Objects: p.rec.Take(), CreatedAt: digest.FormatTime(end)}, end); err != nil {
				b.Fatal(err)
			}
			p.last = end
		}
		genStart := time.Now()
		step := 24 * time.Hour / callbacks
		nextFlush := start.Add(interval)
		nextHour := start.Add(time.Hour)
		for i := range callbacks {
			at := start.Add(time.Duration(i) * step)
			for !at.Before(nextFlush) {
				for _, r := range replicas {
					flushObj(r)
				}
				if !nextFlush.Before(nextHour) {
					for _, r := range replicas {
						writeDigest(r, digest.KindHourly, nextHour)
					}
					nextHour = nextHour.Add(time.Hour)
				}
				nextFlush = nextFlush.Add(interval)
			}
			body := fmt.Appendf(nil, `{"domain":"push.example.com","app":"live","stream":"stream-%06d","user_args":"auth_info=abc%%2Bdef&cdn=hw","client_ip":"100.125.58.90","node_ip":"112.12.196.218","publish_timestamp":"%d","event":"PUBLISH","auth_timestamp":%d,"auth_sign":"fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41"}`,
				i%5000, at.Unix(), at.Unix())
			a := layout.Archive{ReceivedAt: at, EventID: layout.EventID("push.example.com", "live", fmt.Sprint(i%5000), "PUBLISH", fmt.Sprint(at.Unix())), RemoteAddr: "100.125.58.90:4433", Signature: "verified", Instance: replicas[i%2]}
			p := reps[replicas[i%2]]
			p.lines = layout.AppendRecord(p.lines, body, a)
			if i%redeliver == 0 {
				o := replicas[(i+1)%2]
				a.Instance, a.ReceivedAt = o, at.Add(time.Millisecond)
				reps[o].lines = layout.AppendRecord(reps[o].lines, body, a)
			}
		}
		end := start.Add(24 * time.Hour)
		for _, r := range replicas {
			flushObj(r)
			writeDigest(r, digest.KindHourly, end)
			writeDigest(r, digest.KindShutdown, end.Add(time.Second))
		}
		genTook := time.Since(genStart)

		var dObjs, dBytes, objs, objBytes int64
		all, err := st.List(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range all {
			if strings.HasPrefix(o.Key, digest.Prefix) {
				dObjs++
				dBytes += o.Size
			} else {
				objs++
				objBytes += o.Size
			}
		}

		if keep != "" {
			b.Logf("generated into %s/store: %d objects, %d digests; now run:\n"+
				"  /usr/bin/time -v archiver verify --store file://%[1]s/store --from 2026-11-20 --public-key %[1]s/digest-pub.pem --quiet\n"+
				"  /usr/bin/time -v archiver compact --store file://%[1]s/store --day 2026-11-20 --digest-key %[1]s/digest-key.pem --delete-originals",
				keep, objs, dObjs)
			return
		}
		t := time.Now()
		ps, sum, err := verify.Verify(ctx, st.(storage.Store), verify.Options{From: "2026-11-20", PublicKey: pub})
		if err != nil || len(ps) != 0 {
			b.Fatalf("verify: %v %v", err, ps)
		}
		verifyTook := time.Since(t)

		t = time.Now()
		res, err := compact.Compact(ctx, st, compact.Options{Day: "2026-11-20", Key: key, DeleteOriginals: true, FlushBytes: 64 << 20, Gzip: true})
		if err != nil {
			b.Fatal(err)
		}
		compactTook := time.Since(t)

		t = time.Now()
		ps, sum2, err := verify.Verify(ctx, st.(storage.Store), verify.Options{From: "2026-11-20", PublicKey: pub})
		if err != nil || len(ps) != 0 {
			b.Fatalf("verify after compaction: %v %v", err, ps)
		}
		verify2Took := time.Since(t)

		b.Logf("generated %d callbacks (+%d redelivered copies) in %d objects, %.1f MiB, in %s",
			callbacks, res.Collapsed, objs, float64(objBytes)/(1<<20), genTook.Round(time.Millisecond))
		b.Logf("digests: %d objects, %.1f KiB for the day (2 instances; %.0f bytes per listed object)",
			dObjs, float64(dBytes)/1024, float64(dBytes)/float64(objs))
		b.Logf("verify: %s (%d objects, %d events); compact --delete-originals: %s (%d records -> %d in %d objects); verify after: %s (%d objects)",
			verifyTook.Round(time.Millisecond), sum.Objects, sum.Events, compactTook.Round(time.Millisecond), res.Records, res.Kept, len(res.Written), verify2Took.Round(time.Millisecond), sum2.Objects)
		b.ReportMetric(float64(dObjs), "digests/day")
		b.ReportMetric(float64(dBytes), "digest-bytes/day")
		b.ReportMetric(verifyTook.Seconds(), "verify-s")
		b.ReportMetric(compactTook.Seconds(), "compact-s")
		b.ReportMetric(verify2Took.Seconds(), "verify-after-s")
	}
}

// keepStore is a file store in dir/store, with the key pair written next to it.
func keepStore(b *testing.B, dir string, key ed25519.PrivateKey) compact.Store {
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pder, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(dir, "digest-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "digest-pub.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644); err != nil {
		b.Fatal(err)
	}
	st, err := storage.Open(context.Background(), storage.Options{URL: "file://" + filepath.Join(dir, "store")})
	if err != nil {
		b.Fatal(err)
	}
	return st.(compact.Store)
}
