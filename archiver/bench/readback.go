package bench

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
)

// ReadBack is what the benchmark found in the archive after the target stopped, compared with
// the requests it answered 200. It reads the objects itself (list, gunzip, scan lines) rather
// than through the archiver's readback package, so the check is independent of the code under
// test.
type ReadBack struct {
	Objects    int    `json:"objects"`    // archive objects (excluding _rejected/)
	Bytes      int64  `json:"bytes"`      // their stored size
	Lines      int64  `json:"lines"`      // events read back, duplicates included
	UniqueIDs  int64  `json:"unique_ids"` // distinct archive.event_id values (identities for non-archiver targets)
	Acked      int64  `json:"acked"`      // requests answered 200 (warm-up included)
	Missing    int64  `json:"missing"`    // answered 200 but not in the archive: data loss
	Duplicates int64  `json:"duplicates"` // identities read back more than once
	Extra      int64  `json:"extra"`      // stored but not answered 200 (a lost answer or an error answer)
	Foreign    int64  `json:"foreign"`    // lines without this run's identity
	Rejected   int    `json:"rejected"`   // objects under _rejected/
	OK         bool   `json:"ok"`         // Missing == 0 && Duplicates == 0 && Foreign == 0
	Note       string `json:"note,omitempty"`
}

// tally accumulates identities seen in the archive.
type tally struct {
	tag      string
	found    []bitset
	eventIDs map[[16]byte]struct{}
	rb       ReadBack
}

func newTally(tag string, conns int) *tally {
	return &tally{tag: tag, found: make([]bitset, conns), eventIDs: map[[16]byte]struct{}{}}
}

// line records one archived event (a JSON line, or a naive object key).
func (t *tally) line(b []byte) {
	t.rb.Lines++
	w, seq, ok := parseIdentity(b, t.tag)
	if !ok || w >= len(t.found) {
		t.rb.Foreign++
		return
	}
	if t.found[w].set(seq) {
		t.rb.Duplicates++
	}
	if id := fieldValue(b, eventIDKey); len(id) == 32 {
		var k [16]byte
		if _, err := hex.Decode(k[:], id); err == nil {
			t.eventIDs[k] = struct{}{}
		}
	}
}

// finish compares what was found with what was acknowledged.
func (t *tally) finish(acked []bitset) ReadBack {
	rb := t.rb
	var unique int64
	for w := range t.found {
		unique += t.found[w].count()
		var a bitset
		if w < len(acked) {
			a = acked[w]
		}
		rb.Acked += a.count()
		rb.Missing += a.andNotCount(t.found[w])
		rb.Extra += t.found[w].andNotCount(a)
	}
	rb.UniqueIDs = unique
	if len(t.eventIDs) > 0 {
		rb.UniqueIDs = int64(len(t.eventIDs))
	}
	rb.OK = rb.Missing == 0 && rb.Duplicates == 0 && rb.Foreign == 0 && rb.UniqueIDs == unique
	if rb.UniqueIDs != unique {
		rb.Note = fmt.Sprintf("%d distinct event_id values for %d distinct identities", rb.UniqueIDs, unique)
	}
	return rb
}

// readArchive lists bucket/prefix and reads every .jsonl / .jsonl.gz object line by line.
func readArchive(ctx context.Context, mc *minio.Client, bucket, prefix, tag string, acked []bitset) (ReadBack, error) {
	t := newTally(tag, len(acked))
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return t.rb, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		if strings.HasPrefix(rel, "_rejected/") {
			t.rb.Rejected++
			continue
		}
		t.rb.Objects++
		t.rb.Bytes += obj.Size
		if err := readObject(ctx, mc, bucket, obj.Key, t); err != nil {
			return t.rb, err
		}
	}
	return t.finish(acked), nil
}

func readObject(ctx context.Context, mc *minio.Client, bucket, key string, t *tally) error {
	o, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer o.Close()
	var r io.Reader = o
	if strings.HasSuffix(key, ".gz") {
		zr, err := gzip.NewReader(o)
		if err != nil {
			return fmt.Errorf("gunzip s3://%s/%s: %w", bucket, key, err)
		}
		defer zr.Close()
		r = zr
	}
	if err := scanLines(r, t); err != nil {
		return fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

func scanLines(r io.Reader, t *tally) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 256<<10), 4<<20)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			t.line(line)
		}
	}
	return sc.Err()
}

// readNaive counts the naive target's objects: one per event, the identity in the key.
func readNaive(ctx context.Context, mc *minio.Client, bucket, prefix, tag string, acked []bitset) (ReadBack, error) {
	t := newTally(tag, len(acked))
	prefix = strings.TrimSuffix(prefix, "/") + "/"
	for obj := range mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return t.rb, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, obj.Err)
		}
		t.rb.Objects++
		t.rb.Bytes += obj.Size
		t.line([]byte(obj.Key))
	}
	return t.finish(acked), nil
}

// readFile reads the fsync target's file: one body per line.
func readFile(path, tag string, acked []bitset) (ReadBack, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReadBack{}, err
	}
	defer f.Close()
	t := newTally(tag, len(acked))
	if err := scanLines(f, t); err != nil {
		return t.rb, fmt.Errorf("read %s: %w", path, err)
	}
	return t.finish(acked), nil
}
