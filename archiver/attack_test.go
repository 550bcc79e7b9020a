package main

// The attacks of issue 18, through the binary and a file store: someone who can write and delete
// objects in the bucket, but has no signing key, changes what archiver events and archiver
// sessions show. Each case must make verify exit 1 with the problem kinds named; each setup is
// first verified clean (the controls: two replicas, restarts, a compaction).

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/archivetest"
)

// runAdded is what one replica run added to the store.
type runAdded struct{ objects, digests []string }

// replicaRun is replica, returning what the run added.
func replicaRun(t *testing.T, store, key, name string, bodies [][]byte) runAdded {
	t.Helper()
	before := files(t, store, "")
	replica(t, store, key, name, bodies)
	var r runAdded
	for _, f := range files(t, store, "") {
		if slices.Contains(before, f) {
			continue
		}
		if strings.HasPrefix(f, "_digests/") {
			r.digests = append(r.digests, f)
		} else {
			r.objects = append(r.objects, f)
		}
	}
	if len(r.digests) == 0 || len(r.objects) == 0 {
		t.Fatalf("run of %s added %v", name, r)
	}
	return r
}

// fourRuns: ra, rb, ra again, rb again (each run posts its own callbacks), in dir/store with the
// spools beside it. Each later run's digests witness the other instance's newest digest.
func fourRuns(t *testing.T, dir, key string) []runAdded {
	store := filepath.Join(dir, "store")
	return []runAdded{
		replicaRun(t, store, key, "ra", events(5, "ra-1")),
		replicaRun(t, store, key, "rb", events(4, "rb-1")),
		replicaRun(t, store, key, "ra", events(3, "ra-2")),
		replicaRun(t, store, key, "rb", events(2, "rb-2")),
	}
}

func removeAll(t *testing.T, root string, keys ...[]string) {
	t.Helper()
	for _, ks := range keys {
		for _, k := range ks {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(k))); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func moveFile(t *testing.T, root, from, to string, keep bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(from)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(root, filepath.FromSlash(to))), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(to)), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if !keep {
		removeAll(t, root, []string{from})
	}
}

// otherDay files a digest key under another day's directory.
func otherDay(key string, days int) string {
	parts := strings.SplitN(key, "/", 5) // _digests YYYY MM DD rest
	d, _ := time.Parse("2006/01/02", strings.Join(parts[1:4], "/"))
	return "_digests/" + d.AddDate(0, 0, days).Format("2006/01/02") + "/" + parts[4]
}

func wantKinds(t *testing.T, v verifyOut, want string) {
	t.Helper()
	if v.code != 1 || v.kinds() != want {
		t.Fatalf("verify: exit %d, problems %v; want exit 1 and %s\n%s", v.code, v.problems, want, v.stderr)
	}
}

// TestAttacksOnReplicas: the attacks on an archive two replicas wrote, each on its own copy.
func TestAttacksOnReplicas(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	key, pub := keyPair(t, base)
	runs := fourRuns(t, base, key)
	today := layout.Day(time.Now(), nil)
	if v := runVerify(t, filepath.Join(base, "store"), pub); v.code != 0 {
		t.Fatalf("control (two replicas, each restarted once): exit %d %v\n%s", v.code, v.problems, v.stderr)
	}
	// A second archive signed with the same key, under another --archive-id.
	other := t.TempDir()
	otherStore := filepath.Join(other, "store")
	p := serve(t, nil, t.TempDir(), "--spool", filepath.Join(other, "spool"), "--store", "file://"+otherStore, "--digest-key", key, "--instance", "rz", "--flush-interval", "20ms", "--archive-id", "another-archive")
	for _, b := range events(3, "elsewhere") {
		archivetest.Post(t, p.url+"/callback", b)
	}
	if code, _ := p.terminate(); code != 0 {
		t.Fatalf("rz exited %d", code)
	}
	if v := runVerifyDay(t, otherStore, pub, today, "--archive-id", "another-archive"); v.code != 0 {
		t.Fatalf("control (the other archive): %v", v.problems)
	}
	cases := []struct {
		name   string
		attack func(t *testing.T, store string) verifyOut
		want   string
	}{
		{"an instance's digests and objects of the day deleted", func(t *testing.T, s string) verifyOut {
			removeAll(t, s, runs[1].digests, runs[1].objects, runs[3].digests, runs[3].objects)
			return runVerify(t, s, pub)
		}, "chain_broken"},
		{"the last shutdown digest and the objects after the previous one deleted", func(t *testing.T, s string) verifyOut {
			removeAll(t, s, runs[2].digests, runs[2].objects)
			return runVerify(t, s, pub)
		}, "chain_broken"},
		{"a digest moved to another day, its objects deleted", func(t *testing.T, s string) verifyOut {
			moveFile(t, s, runs[2].digests[0], otherDay(runs[2].digests[0], 10), false)
			removeAll(t, s, runs[2].objects)
			return runVerify(t, s, pub)
		}, "chain_broken"},
		{"the moved digest, verified where it now is", func(t *testing.T, s string) verifyOut {
			moved := otherDay(runs[2].digests[0], 10)
			moveFile(t, s, runs[2].digests[0], moved, false)
			d, _ := time.Parse("2006/01/02", strings.Join(strings.Split(moved, "/")[1:4], "/"))
			return runVerifyDay(t, s, pub, d.Format(layout.DayLayout))
		}, "misplaced"},
		{"a digest copied under another instance name", func(t *testing.T, s string) verifyOut {
			moveFile(t, s, runs[0].digests[0], strings.Replace(runs[0].digests[0], "/ra/", "/rx/", 1), true)
			return runVerify(t, s, pub)
		}, "misplaced"},
		{"a digest copied under the previous day", func(t *testing.T, s string) verifyOut {
			moveFile(t, s, runs[0].digests[0], otherDay(runs[0].digests[0], -1), true)
			return runVerify(t, s, pub)
		}, "misplaced"},
		{"a digest and its objects copied from another archive", func(t *testing.T, s string) verifyOut {
			for _, f := range files(t, otherStore, "") {
				b, _ := os.ReadFile(filepath.Join(otherStore, f))
				os.MkdirAll(filepath.Dir(filepath.Join(s, f)), 0o700)
				if err := os.WriteFile(filepath.Join(s, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			return runVerify(t, s, pub)
		}, "misplaced,unlisted"},
		{"an unlisted object on the next day (archiver sessions reads it)", func(t *testing.T, s string) verifyOut {
			tomorrow := layout.Day(time.Now().AddDate(0, 0, 1), nil)
			moveFile(t, s, runs[0].objects[0], strings.Replace(runs[0].objects[0], "dt="+today, "dt="+tomorrow, 1), true)
			return runVerify(t, s, pub)
		}, "unlisted"},
		{"a day with no digest at all", func(t *testing.T, s string) verifyOut {
			return runVerifyDay(t, s, pub, layout.Day(time.Now().AddDate(0, 0, -1), nil))
		}, "uncovered"},
		{"a fully wiped day", func(t *testing.T, s string) verifyOut {
			for _, r := range runs {
				removeAll(t, s, r.digests, r.objects)
			}
			return runVerify(t, s, pub)
		}, "uncovered"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantKinds(t, c.attack(t, filepath.Join(copyTree(t, base), "store")), c.want)
		})
	}
}

// TestAttacksOnRestarts: a restart of a spool-mode instance never signs what it did not write,
// and never continues its chain over a deleted tail.
func TestAttacksOnRestarts(t *testing.T) {
	t.Parallel()
	today := layout.Day(time.Now(), nil)
	t.Run("an object planted before a routine restart stays unlisted", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key, pub := keyPair(t, dir)
		store := filepath.Join(dir, "store")
		r1 := replicaRun(t, store, key, "ra", events(4, "before"))
		// Named like the instance's next object, with another object's (valid) bytes.
		planted := "dt=" + today + "/ra-99999999999999999999-000.jsonl.gz"
		moveFile(t, store, r1.objects[0], planted, true)
		replicaRun(t, store, key, "ra", events(2, "after")) // the control's restart
		v := runVerify(t, store, pub)
		wantKinds(t, v, "unlisted")
		if v.problems["unlisted"][0] != planted {
			t.Fatalf("unlisted %v, want %s", v.problems["unlisted"], planted)
		}
	})
	t.Run("an object edited after a crash stays unlisted, the others are recovered", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key, pub := keyPair(t, dir)
		store := filepath.Join(dir, "store")
		r1 := replicaRun(t, store, key, "ra", events(3, "before"))
		before := files(t, store, "dt="+today)
		p := serve(t, nil, t.TempDir(), "--spool", filepath.Join(dir, "spool-ra"), "--store", "file://"+store, "--digest-key", key, "--instance", "ra", "--flush-interval", "20ms", "--archive-id", archiveID)
		for i, b := range events(6, "killed") {
			archivetest.Post(t, p.url+"/callback", b)
			if i%2 == 1 {
				time.Sleep(60 * time.Millisecond) // several objects
			}
		}
		archivetest.Eventually(t, 10*time.Second, "the killed run's objects stored", func() bool {
			return len(files(t, store, "dt="+today)) >= len(before)+2
		})
		p.kill()
		var killed []string
		for _, f := range files(t, store, "dt="+today) {
			if !slices.Contains(before, f) {
				killed = append(killed, f)
			}
		}
		edited := killed[0]
		moveFile(t, store, r1.objects[0], edited+".tmp", true)
		os.Rename(filepath.Join(store, edited+".tmp"), filepath.Join(store, edited)) // other bytes, same name
		logs := replica(t, store, key, "ra", events(2, "after"))
		v := runVerify(t, store, pub)
		if v.code != 1 || v.kinds() != "unlisted" || !slices.Equal(v.problems["unlisted"], []string{edited}) {
			t.Fatalf("exit %d, problems %v; want only the edited %s unlisted\n%s", v.code, v.problems, edited, strings.Join(logs, "\n"))
		}
	})
	t.Run("a deleted tail is not sealed over by the next start", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key, pub := keyPair(t, dir)
		store := filepath.Join(dir, "store")
		replicaRun(t, store, key, "ra", events(3, "one"))
		r2 := replicaRun(t, store, key, "ra", events(3, "two"))
		if v := runVerify(t, store, pub); v.code != 0 {
			t.Fatalf("control (a restart): %v", v.problems)
		}
		removeAll(t, store, r2.digests, r2.objects)
		logs := replica(t, store, key, "ra", events(2, "three"))
		wantKinds(t, runVerify(t, store, pub), "chain_broken")
		found := false
		for _, l := range logs {
			found = found || strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, r2.digests[0])
		}
		if !found {
			t.Fatalf("no ERROR naming the deleted digest %s:\n%s", r2.digests[0], strings.Join(logs, "\n"))
		}
	})
}

// TestAttacksOnCompaction: compaction refuses a day with missing objects (it would sign the day
// whole, and a rerun could delete the originals' digests' evidence), and an original put back
// after a compaction deleted it is reported.
func TestAttacksOnCompaction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	runs := []runAdded{
		replicaRun(t, store, key, "ra", events(5, "a")),
		replicaRun(t, store, key, "rb", events(4, "b")),
	}
	t.Run("missing object", func(t *testing.T) {
		s := filepath.Join(copyTree(t, dir), "store")
		removeAll(t, s, runs[0].objects[:1])
		before := snapshot(t, s)
		out, code := compactDay(t, s, key, nil, "--delete-originals")
		if code != 1 || !strings.Contains(out, "missing "+runs[0].objects[0]) {
			t.Fatalf("compact over a missing object: exit %d\n%s", code, out)
		}
		if after := snapshot(t, s); len(after) != len(before) {
			t.Fatalf("compact changed the store: %d files before, %d after", len(before), len(after))
		}
	})
	t.Run("original back after compaction", func(t *testing.T) {
		s := filepath.Join(copyTree(t, dir), "store")
		saved, err := os.ReadFile(filepath.Join(s, runs[0].objects[0]))
		if err != nil {
			t.Fatal(err)
		}
		if out, code := compactDay(t, s, key, nil, "--delete-originals"); code != 0 {
			t.Fatalf("compact: exit %d\n%s", code, out)
		}
		if v := runVerify(t, s, pub); v.code != 0 {
			t.Fatalf("control (a compaction): %v", v.problems)
		}
		if err := os.WriteFile(filepath.Join(s, runs[0].objects[0]), saved, 0o600); err != nil {
			t.Fatal(err)
		}
		v := runVerify(t, s, pub)
		wantKinds(t, v, "reappeared")
		if v.problems["reappeared"][0] != runs[0].objects[0] {
			t.Fatalf("reappeared %v", v.problems)
		}
	})
}
