package main

// End-to-end tests of the integrity commands through the binary: serve --digest-key, verify,
// compact, events, on a file store shared by two replicas.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/livehook/terraform-provider-livehook/archiver/compact"
	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// keyPair writes an Ed25519 private key (PEM PKCS#8, as openssl genpkey writes it) and its public
// key (PEM PKIX) into dir.
func keyPair(t *testing.T, dir string) (priv, pub string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pder, _ := x509.MarshalPKIXPublicKey(k.Public())
	priv, pub = filepath.Join(dir, "digest-key.pem"), filepath.Join(dir, "digest-pub.pem")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// command runs the binary to completion (bounded) and returns stdout, stderr and the exit code.
func command(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running archiver %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// archiveID is the --archive-id of every serve, verify and compact of these tests: each case
// damages a copy of a store (copyTree), which must still be the same archive.
const archiveID = "integrity-test"

type verifyOut struct {
	code     int
	problems map[string][]string // kind -> keys
	summary  map[string]any
	stderr   string
}

func runVerify(t *testing.T, store, pub string) verifyOut {
	t.Helper()
	return runVerifyDay(t, store, pub, layout.Day(time.Now(), nil))
}

// runVerifyDay verifies one day; extra flags follow.
func runVerifyDay(t *testing.T, store, pub, day string, extra ...string) verifyOut {
	t.Helper()
	if !slices.Contains(extra, "--archive-id") {
		extra = append(extra, "--archive-id", archiveID)
	}
	out, errs, code := command(t, nil, append([]string{"verify", "--store", "file://" + store, "--from", day, "--public-key", pub, "--format", "jsonl"}, extra...)...)
	v := verifyOut{code: code, problems: map[string][]string{}, stderr: errs}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("verify output %q: %v\nstderr: %s", line, err, errs)
		}
		if s, ok := m["summary"].(map[string]any); ok {
			v.summary = s
			continue
		}
		kind, _ := m["problem"].(string)
		key, _ := m["key"].(string)
		v.problems[kind] = append(v.problems[kind], key)
	}
	return v
}

func (v verifyOut) kinds() string {
	var k []string
	for kind := range v.problems {
		k = append(k, kind)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// replica runs `archiver serve` (spool mode, the spool under store's parent named after the
// instance, so a second run continues the instance's sequence and chain) with digests on the file
// store, posts bodies, and stops it (SIGTERM: the shutdown digest). It returns the run's log.
func replica(t *testing.T, store, key, name string, bodies [][]byte) []string {
	t.Helper()
	spool := filepath.Join(filepath.Dir(store), "spool-"+name)
	p := serve(t, nil, t.TempDir(), "--spool", spool, "--store", "file://"+store, "--digest-key", key, "--instance", name, "--flush-interval", "20ms", "--archive-id", archiveID)
	for _, b := range bodies {
		if r := archivetest.Post(t, p.url+"/callback", b); r.Status != 200 && r.Status != 400 {
			t.Fatalf("POST %s: %d %s", b, r.Status, r.Raw)
		}
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("%s exited %d", name, code)
	}
	return p.Logs()
}

// keysFile is a --keys file, so serve starts whatever its unsigned-intake default is.
func keysFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(p, []byte(`{"signed.example.com":"0123456789abcdef"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func events(n int, stream string) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, archivetest.Event("audit.example.com", stream, "PUBLISH", int64(1_700_000_000+i)))
	}
	return out
}

// copyTree copies the store so each case damages its own copy.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// files lists the store's files under under, without the file store's temporary files.
func files(t *testing.T, root, under string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(root, under), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), fsutil.TempPrefix) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestVerifyEndToEnd: a clean archive verifies (exit 0, summary counts); each kind of tampering is
// reported with its key and exit 1; a wrong public key is bad_signature.
func TestVerifyEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	// Two runs of the same instance: three chained digests (the fresh spool's start digest, then a
	// shutdown digest per run); a malformed body leaves a _rejected sample.
	replica(t, store, key, "ra", append(events(12, "one"), []byte(`{"not json`)))
	replica(t, store, key, "ra", events(3, "two"))
	if len(files(t, store, "_rejected")) == 0 {
		t.Fatal("no _rejected sample was stored")
	}
	clean := runVerify(t, store, pub)
	if clean.code != 0 || len(clean.problems) != 0 {
		t.Fatalf("clean archive: exit %d, problems %v\n%s", clean.code, clean.problems, clean.stderr)
	}
	if clean.summary["events"].(float64) != 15 || clean.summary["digests"].(float64) != 3 || clean.summary["instances"].(float64) != 1 {
		t.Fatalf("summary %v", clean.summary)
	}
	objs := files(t, store, "dt="+layout.Day(time.Now(), nil))
	digests := files(t, store, "_digests")
	rejected := files(t, store, "_rejected")
	_, otherPub := keyPair(t, t.TempDir())
	cases := []struct {
		name   string
		damage func(s string)
		pub    string
		want   string // kinds, sorted
		key    string // a key that must be named
	}{
		{"alter an object", func(s string) {
			b, _ := os.ReadFile(filepath.Join(s, objs[0]))
			b[len(b)-6] ^= 0xff
			os.WriteFile(filepath.Join(s, objs[0]), b, 0o644)
		}, pub, "altered", objs[0]},
		{"delete an object", func(s string) { os.Remove(filepath.Join(s, objs[1])) }, pub, "missing", objs[1]},
		{"insert an object", func(s string) {
			b, _ := os.ReadFile(filepath.Join(s, objs[1]))
			os.WriteFile(filepath.Join(s, strings.Replace(objs[1], "ra-", "zz-", 1)), b, 0o644)
		}, pub, "unlisted", strings.Replace(objs[1], "ra-", "zz-", 1)},
		{"alter a rejected sample", func(s string) {
			os.WriteFile(filepath.Join(s, rejected[0]), []byte(`{"forged":true}`), 0o644)
		}, pub, "altered", rejected[0]},
		// The first digest (the start digest, which lists nothing) gone, nothing shows when the
		// archive began: the hours before are uncovered.
		{"delete the first digest", func(s string) { os.Remove(filepath.Join(s, digests[0])) }, pub, "chain_broken,uncovered", digests[1]},
		{"delete a digest", func(s string) { os.Remove(filepath.Join(s, digests[1])) }, pub, "chain_broken,unlisted", digests[2]},
		{"wrong public key", func(string) {}, otherPub, "bad_signature,uncovered", digests[0]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := copyTree(t, store)
			c.damage(s)
			v := runVerify(t, s, c.pub)
			if v.code != 1 || v.kinds() != c.want {
				t.Fatalf("exit %d, problems %v; want exit 1 and %s\n%s", v.code, v.problems, c.want, v.stderr)
			}
			found := false
			for _, keys := range v.problems {
				for _, k := range keys {
					found = found || k == c.key
				}
			}
			if !found {
				t.Errorf("no problem names %s: %v", c.key, v.problems)
			}
		})
	}
	// Usage and access errors exit 2.
	for _, args := range [][]string{
		{"verify", "--store", "file://" + store, "--from", "2026-13-01", "--public-key", pub},
		{"verify", "--store", "file://" + store, "--from", "2026-11-01"},
		{"verify", "--store", "file://" + store, "--from", "2026-11-01", "--public-key", key + ".missing"},
		{"verify", "--store", "file://" + filepath.Join(dir, "no-such-dir"), "--from", "2026-11-01", "--public-key", pub},
	} {
		if _, errs, code := command(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errs)
		}
	}
}

// twoReplicas fills a store the way two replicas behind a load balancer do: shared callbacks were
// delivered to both (a redelivery that reached the other replica), others to one only.
func twoReplicas(t *testing.T, store, key string) (unique int) {
	shared := events(8, "shared")
	replica(t, store, key, "ra", append(append([][]byte{}, shared...), events(5, "only-a")...))
	replica(t, store, key, "rb", append(append([][]byte{}, shared...), events(4, "only-b")...))
	return 8 + 5 + 4
}

func eventIDs(t *testing.T, store string) map[string]int {
	t.Helper()
	out, errs, code := command(t, nil, "events", "--store", "file://"+store, "--from", layout.Day(time.Now(), nil))
	if code != 0 {
		t.Fatalf("events: exit %d\n%s", code, errs)
	}
	ids := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Archive layout.Archive `json:"archive"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("events line %q: %v", line, err)
		}
		ids[m.Archive.EventID]++
	}
	return ids
}

func compactDay(t *testing.T, store, key string, env []string, extra ...string) (string, int) {
	t.Helper()
	args := append([]string{"compact", "--store", "file://" + store, "--day", layout.Day(time.Now(), nil), "--digest-key", key, "--flush-bytes", "2KiB", "--archive-id", archiveID}, extra...)
	out, errs, code := command(t, env, args...)
	return out + errs, code
}

func snapshot(t *testing.T, root string) map[string]string {
	m := map[string]string{}
	for _, f := range files(t, root, "") {
		b, _ := os.ReadFile(filepath.Join(root, f))
		m[f] = string(b)
	}
	return m
}

// TestCompactReplicas: two replicas' objects with shared callbacks compact into compacted objects
// with each callback once, sorted; verify passes before and after --delete-originals; events reads
// the compacted day; a rerun changes nothing.
func TestCompactReplicas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	unique := twoReplicas(t, store, key)
	if ids := eventIDs(t, store); len(ids) != unique || ids[firstKey(ids)] < 1 {
		t.Fatalf("before: %d distinct events, want %d", len(ids), unique)
	}
	if v := runVerify(t, store, pub); v.code != 0 {
		t.Fatalf("before compaction: %v", v.problems)
	}
	// archiver sessions reads the compacted day as it read the replicas' objects.
	sessionsArgs := []string{"sessions", "--store", "file://" + store, "--from", layout.Day(time.Now(), nil), "--format", "jsonl"}
	sessionsBefore, errs, code := command(t, nil, sessionsArgs...)
	if code != 0 || strings.TrimSpace(sessionsBefore) == "" {
		t.Fatalf("sessions before compaction: exit %d, %q\n%s", code, sessionsBefore, errs)
	}
	out, code := compactDay(t, store, key, nil)
	if code != 0 {
		t.Fatalf("compact: exit %d\n%s", code, out)
	}
	if v := runVerify(t, store, pub); v.code != 0 {
		t.Fatalf("after compaction, originals kept: %v", v.problems)
	}
	out, code = compactDay(t, store, key, nil, "--delete-originals")
	if code != 0 {
		t.Fatalf("compact --delete-originals: exit %d\n%s", code, out)
	}
	v := runVerify(t, store, pub)
	if v.code != 0 {
		t.Fatalf("after --delete-originals: %v", v.problems)
	}
	day := "dt=" + layout.Day(time.Now(), nil)
	objs := files(t, store, day)
	if len(objs) < 2 {
		t.Fatalf("--flush-bytes 2KiB should give several compacted objects: %v", objs)
	}
	for _, k := range objs {
		if !layout.IsCompactedKey(k) {
			t.Errorf("original %s left after --delete-originals", k)
		}
	}
	ids := eventIDs(t, store)
	if len(ids) != unique {
		t.Fatalf("after compaction: %d distinct events, want %d", len(ids), unique)
	}
	if after, errs, _ := command(t, nil, sessionsArgs...); after != sessionsBefore {
		t.Errorf("archiver sessions differs after compaction:\nbefore %s\nafter  %s\n%s", sessionsBefore, after, errs)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s %d times after compaction", id, n)
		}
	}
	// Sorted by received_at across the compacted objects, the earliest copy kept.
	outEv, _, _ := command(t, nil, "events", "--store", "file://"+store, "--from", layout.Day(time.Now(), nil))
	var last string
	for _, line := range strings.Split(strings.TrimSpace(outEv), "\n") {
		var m struct {
			Archive struct {
				ReceivedAt string `json:"received_at"`
				Instance   string `json:"instance"`
			} `json:"archive"`
			Stream string `json:"stream"`
		}
		json.Unmarshal([]byte(line), &m)
		if m.Archive.ReceivedAt < last {
			t.Errorf("not sorted: %s after %s", m.Archive.ReceivedAt, last)
		}
		last = m.Archive.ReceivedAt
		if m.Stream == "shared" && m.Archive.Instance != "ra" {
			t.Errorf("shared callback kept from %s, want the earlier copy (ra)", m.Archive.Instance)
		}
	}
	before := snapshot(t, store)
	out, code = compactDay(t, store, key, nil, "--delete-originals")
	if code != 0 || !strings.Contains(out, "nothing changed") {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	after := snapshot(t, store)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("a rerun changed the store:\nbefore %v\nafter %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}

// TestCompactCrash: a compaction killed after any step leaves a day that verifies, and a rerun
// finishes it with each callback once and confirms the deletion, so an original put back is
// reported as reappeared.
func TestCompactCrash(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"digest", "written", "checked", "removal-digest", "deleted"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			key, pub := keyPair(t, dir)
			store := filepath.Join(dir, "store")
			unique := twoReplicas(t, store, key)
			original := files(t, store, "dt="+layout.Day(time.Now(), nil))[0]
			saved, err := os.ReadFile(filepath.Join(store, original))
			if err != nil {
				t.Fatal(err)
			}
			out, code := compactDay(t, store, key, []string{compact.CrashEnv + "=" + step}, "--delete-originals")
			if code != 3 {
				t.Fatalf("crash at %s: exit %d\n%s", step, code, out)
			}
			if v := runVerify(t, store, pub); v.code != 0 {
				t.Fatalf("after a crash at %s: %v", step, v.problems)
			}
			if out, code := compactDay(t, store, key, nil, "--delete-originals"); code != 0 {
				t.Fatalf("rerun: exit %d\n%s", code, out)
			}
			if v := runVerify(t, store, pub); v.code != 0 {
				t.Fatalf("after the rerun: %v", v.problems)
			}
			ids := eventIDs(t, store)
			if len(ids) != unique {
				t.Fatalf("%d distinct events, want %d", len(ids), unique)
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("event %s %d times", id, n)
				}
			}
			if err := os.WriteFile(filepath.Join(store, original), saved, 0o600); err != nil {
				t.Fatal(err)
			}
			if v := runVerify(t, store, pub); v.code != 1 || v.kinds() != "reappeared" {
				t.Fatalf("an original put back: exit %d %v", v.code, v.problems)
			}
		})
	}
}

// TestServeDigestFlags: without --digest-key serve says once that the archive will not be
// verifiable; --object-lock on a store without Object Lock refuses to start.
func TestServeDigestFlags(t *testing.T) {
	t.Parallel()
	p := serve(t, nil, t.TempDir(), "--ack", "store", "--store", "file://"+t.TempDir())
	p.terminate()
	n := 0
	for _, l := range p.Logs() {
		if strings.Contains(l, "will not be verifiable") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d 'not verifiable' warnings, want 1", n)
	}
	_, errs, code := command(t, nil, "serve", "--listen", "127.0.0.1:0", "--ack", "store", "--store", "file://"+t.TempDir(), "--keys", keysFile(t), "--object-lock", "COMPLIANCE:30")
	if code == 0 || !strings.Contains(errs, "Object Lock") {
		t.Errorf("--object-lock on a file store: exit %d\n%s", code, errs)
	}
	_, errs, code = command(t, nil, "serve", "--object-lock", "FOREVER")
	if code != 2 || !strings.Contains(errs, "MODE:DAYS") {
		t.Errorf("--object-lock FOREVER: exit %d\n%s", code, errs)
	}
}

// TestServeObjectLock: with --object-lock every object and digest the archiver writes carries the
// retention (VersityGW bucket created with Object Lock); a bucket without it is refused at start.
func TestServeObjectLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gw := versitygw.Shared(t)
	c, err := gw.Client()
	if err != nil {
		t.Fatal(err)
	}
	bucket := fmt.Sprintf("locked-%d", time.Now().UnixNano())
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: versitygw.Region, ObjectLocking: true}); err != nil {
		t.Fatal(err)
	}
	key, _ := keyPair(t, t.TempDir())
	p := serve(t, gw, t.TempDir(), append(s3Args(gw, bucket), "--ack", "store", "--digest-key", key, "--object-lock", "GOVERNANCE:1", "--flush-interval", "20ms")...)
	for _, b := range events(3, "locked") {
		archivetest.Post(t, p.url+"/callback", b)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	n, digests := 0, 0
	for obj := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		info, err := c.StatObject(ctx, bucket, obj.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if m := info.Metadata.Get("X-Amz-Object-Lock-Mode"); m != "GOVERNANCE" {
			t.Errorf("%s: lock mode %q", obj.Key, m)
		}
		n++
		if strings.Contains(obj.Key, "_digests/") {
			digests++
		}
	}
	if n < 4 || digests != 2 { // the store-mode process's start and shutdown digests
		t.Fatalf("%d objects, %d digests", n, digests)
	}
	plain := gw.BucketT(t)
	_, errs, code := command(t, gw.Env(), append([]string{"serve", "--listen", "127.0.0.1:0", "--ack", "store", "--keys", keysFile(t), "--object-lock", "GOVERNANCE:1"}, s3Args(gw, plain)...)...)
	if code == 0 || !strings.Contains(errs, "does not have Object Lock enabled") {
		t.Fatalf("plain bucket: exit %d\n%s", code, errs)
	}
}

// TestVerifyAfterKill9: a replica killed before it wrote any digest of its run leaves objects no
// digest lists; its next start (same spool, same instance) lists them and covers the time since
// the last digest, so the archive still verifies.
func TestVerifyAfterKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	replica(t, store, key, "ra", events(3, "before"))
	spool := filepath.Join(dir, "spool-ra")
	before := len(files(t, store, "dt="+layout.Day(time.Now(), nil)))
	p := serve(t, nil, t.TempDir(), "--spool", spool, "--store", "file://"+store, "--digest-key", key, "--instance", "ra", "--flush-interval", "20ms", "--archive-id", archiveID)
	for _, b := range events(4, "killed") {
		archivetest.Post(t, p.url+"/callback", b)
	}
	archivetest.Eventually(t, 10*time.Second, "the killed run's objects stored", func() bool {
		return len(files(t, store, "dt="+layout.Day(time.Now(), nil))) > before
	})
	p.kill()
	if v := runVerify(t, store, pub); v.code != 1 || len(v.problems["unlisted"]) == 0 {
		t.Fatalf("before the restart the killed run's objects are unlisted: %v", v.problems)
	}
	replica(t, store, key, "ra", events(2, "after"))
	v := runVerify(t, store, pub)
	if v.code != 0 {
		t.Fatalf("after the restart: exit %d %v", v.code, v.problems)
	}
	if v.summary["events"].(float64) != 9 {
		t.Fatalf("summary %v", v.summary)
	}
}

// TestVerifyAfterKill9FirstRun: the first run on a fresh spool writes a start digest before it
// takes callbacks (its chain begins), so when it is killed before any other digest, its objects are
// pending behind the start digest (verify exits 3), not unlisted; the next start on that spool
// continues the chain from the start digest (no second start digest), lists them and covers the
// time since, so the archive verifies.
func TestVerifyAfterKill9FirstRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	spool := filepath.Join(dir, "spool-ra")
	p := serve(t, nil, t.TempDir(), "--spool", spool, "--store", "file://"+store, "--digest-key", key, "--instance", "ra", "--flush-interval", "20ms", "--archive-id", archiveID)
	notHourly := func() (out []string) { // an hourly digest: the test crossed an hour
		for _, d := range files(t, store, "_digests") {
			if !strings.HasSuffix(d, "-hourly.json") {
				out = append(out, d)
			}
		}
		return out
	}
	if ds := notHourly(); len(ds) != 1 || !strings.HasSuffix(ds[0], "-0000000001-start.json") {
		t.Fatalf("digests once the first run listens: %v; want its start digest", ds)
	}
	for _, b := range events(4, "killed") {
		archivetest.Post(t, p.url+"/callback", b)
	}
	archivetest.Eventually(t, 10*time.Second, "the killed run's objects stored", func() bool {
		return len(files(t, store, "dt="+layout.Day(time.Now(), nil))) > 0
	})
	p.kill()
	if v := runVerify(t, store, pub); v.code != 3 || len(v.problems) != 0 || v.summary["pending"] == nil {
		t.Fatalf("after the kill: exit %d %v %v; want exit 3, the objects pending behind the start digest", v.code, v.problems, v.summary)
	}
	logs := replica(t, store, key, "ra", events(2, "after"))
	if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, "did not shut down cleanly") }) {
		t.Errorf("the restart did not recover:\n%s", strings.Join(logs, "\n"))
	}
	v := runVerify(t, store, pub)
	if v.code != 0 || v.summary["events"].(float64) != 6 {
		t.Fatalf("after the restart: exit %d %v %v", v.code, v.problems, v.summary)
	}
	ds := notHourly()
	if len(ds) != 2 || !strings.HasSuffix(ds[0], "-0000000001-start.json") || !strings.HasSuffix(ds[1], "-shutdown.json") {
		t.Fatalf("digests %v; want the start digest, then the restart's shutdown digest continuing the chain", ds)
	}
}
