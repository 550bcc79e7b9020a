package readme

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/readback"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// TestEventsCSVInDuckDB: what `archiver events --format csv` writes, DuckDB reads with the
// documented columns, one row per event `--format jsonl` prints, times as timestamps.
func TestEventsCSVInDuckDB(t *testing.T) {
	testenv.Cgo(t, duckDB != nil)
	a := archive(t)
	events := func(format string) string {
		cmd := exec.Command(filepath.Join(a.BinDir, "archiver"), "events", "--store", "file://"+a.Dir, "--from", a.Day, "--format", format)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("archiver events --format %s: %v", format, err)
		}
		return string(out)
	}
	jsonl := strings.Count(events("jsonl"), "\n")
	file := filepath.Join(t.TempDir(), "events.csv")
	if err := os.WriteFile(file, []byte(events("csv")), 0o600); err != nil {
		t.Fatal(err)
	}
	cols, rows, err := duckDB(fmt.Sprintf(`SELECT * FROM read_csv('%s', header = true)`, file))
	if err != nil {
		t.Fatalf("DuckDB: %v", err)
	}
	if strings.Join(cols, ",") != strings.Join(readback.CSVColumns, ",") || len(rows) != jsonl || jsonl == 0 {
		t.Fatalf("DuckDB reads columns %v and %d rows; want %v and %d rows (the jsonl events)", cols, len(rows), readback.CSVColumns, jsonl)
	}
	_, rows, err = duckDB(fmt.Sprintf(`SELECT typeof(received_at), typeof(publish_time), count(*) FILTER (WHERE client_ip IS NULL OR event_id IS NULL)
		FROM read_csv('%s', header = true) GROUP BY ALL`, file))
	if err != nil || len(rows) != 1 || !strings.HasPrefix(fmt.Sprint(rows[0][0]), "TIMESTAMP") || !strings.HasPrefix(fmt.Sprint(rows[0][1]), "TIMESTAMP") || fmt.Sprint(rows[0][2]) != "0" {
		t.Errorf("DuckDB: types and empty cells %v (%v); want timestamps and every event with a client_ip and an event_id", rows, err)
	}
}
