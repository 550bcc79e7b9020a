package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/digest"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
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
			_, key, _ := ed25519.GenerateKey(rand.Reader)
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			kf := filepath.Join(t.TempDir(), "k.pem")
			os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
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
