package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

// TestReportIntegrity: with --public-key the report carries archiver verify's answer for each
// day: verified on an archive the archivers signed, the problem and its object once an object is
// deleted (and the command says so on stderr but still writes the page, exit 0). An object
// altered so that it cannot be read fails the report (exit 1) with a pointer to archiver verify.
func TestReportIntegrity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, pub := keyPair(t, dir)
	store := filepath.Join(dir, "store")
	replica(t, store, key, "ra", events(6, "cam"))
	day := layout.Day(time.Now(), nil)
	report := func(s string) (page, stderr string, code int) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "r.html")
		_, stderr, code = command(t, nil, "report", "--store", "file://"+s, "--from", day, "--public-key", pub, "--archive-id", archiveID, "--out", out)
		b, _ := os.ReadFile(out)
		return string(b), stderr, code
	}
	page, stderr, code := report(store)
	if code != 0 || stderr != "" || !strings.Contains(page, `<b>1/1</b><span>days verified complete and unaltered</span>`) ||
		!strings.Contains(page, `<tr class="good"><td>`+day+`</td>`) {
		i := strings.Index(page, `<section id="integrity">`)
		t.Fatalf("clean archive: exit %d, stderr %q; the page does not say the day verified:\n%s", code, stderr, page[i:min(len(page), i+3000)])
	}
	objs := files(t, store, "dt="+day)
	s := copyTree(t, store)
	if err := os.Remove(filepath.Join(s, objs[0])); err != nil {
		t.Fatal(err)
	}
	page, stderr, code = report(s)
	if code != 0 || !strings.Contains(stderr, "day "+day+" does not verify") || !strings.Contains(page, `<b>0/1</b>`) ||
		!strings.Contains(page, "<code>missing</code> "+objs[0]) {
		t.Errorf("deleted object: exit %d, stderr %q; the page does not name the missing object %s", code, stderr, objs[0])
	}
	s = copyTree(t, store)
	b, err := os.ReadFile(filepath.Join(s, objs[0]))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-6] ^= 0xff
	if err := os.WriteFile(filepath.Join(s, objs[0]), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code = report(s); code != 1 || !strings.Contains(stderr, objs[0]) || !strings.Contains(stderr, "archiver verify --from "+day) {
		t.Errorf("unreadable object: exit %d, stderr %q; want exit 1 naming the object and archiver verify", code, stderr)
	}
}
