package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The floor target answers 200 only once the body is in its file: every answer, when it comes,
// finds its own line already written (the fdatasync came before it), concurrent requests
// included.
func TestGroupCommitAnswersAfterTheWrite(t *testing.T) {
	t.Parallel()
	for _, window := range []time.Duration{0, 2 * time.Millisecond} {
		path := filepath.Join(t.TempDir(), "floor.jsonl")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		g := newGroupCommit(f, window)
		srv := httptest.NewServer(g)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				body := fmt.Sprintf(`{"n":%d}`, i)
				resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: status %d", i, resp.StatusCode)
					return
				}
				b, err := os.ReadFile(path)
				if err != nil || !strings.Contains(string(b), body+"\n") {
					t.Errorf("window %s: request %d answered before its line was written (%v)", window, i, err)
				}
			})
		}
		wg.Wait()
		srv.Close()
		g.close()
		f.Close()
	}
}
