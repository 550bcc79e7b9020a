package digest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sync"

	// klauspost's gzip decompresses about twice as fast as compress/gzip: Describe runs on the
	// upload path for every stored object.
	"github.com/klauspost/compress/gzip"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// receivedAtMarker starts the archive field layout.AppendRecord puts last on every line.
var receivedAtMarker = []byte(`"archive":{"received_at":"`)

// Describe lists one object: size and SHA-256 of its bytes and, for archive objects (gzip or plain
// JSON Lines, by name as layout.IsObjectKey decides), the record count and the first and last
// received_at. Other objects (rejected samples) count as zero records. A body that does not parse
// as its name says is an error: the caller stored something that is not an archive object.
func Describe(key string, body []byte) (Entry, error) {
	e := Entry{Key: key, Size: int64(len(body)), SHA256: Sum(body)}
	ok, gz := layout.IsObjectKey(key)
	if !ok {
		return e, nil
	}
	var r io.Reader = bytes.NewReader(body)
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return e, fmt.Errorf("describing %s: not gzip: %w", key, err)
		}
		defer zr.Close()
		r = zr
	}
	err := ScanReceivedAt(r, func(at []byte) {
		e.Records++
		if s := string(at); e.FirstReceivedAt == "" || s < e.FirstReceivedAt {
			e.FirstReceivedAt = s
		}
		if s := string(at); s > e.LastReceivedAt {
			e.LastReceivedAt = s
		}
	})
	if err != nil {
		return e, fmt.Errorf("describing %s: %w", key, err)
	}
	return e, nil
}

// ScanReceivedAt calls fn with the received_at of every non-blank line of r (an archive object's
// JSON Lines). A line without the archive field counts with an empty value.
func ScanReceivedAt(r io.Reader, fn func(receivedAt []byte)) error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() { br.Reset(nil); readers.Put(br) }()
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: collect it whole.
			full := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if len(bytes.TrimSpace(line)) > 0 {
			fn(ReceivedAt(line))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ReceivedAt extracts archive.received_at from one archived line without decoding it (the archive
// field is last on the line, so the last marker is the real one). nil when absent.
func ReceivedAt(line []byte) []byte {
	i := bytes.LastIndex(line, receivedAtMarker)
	if i < 0 {
		return nil
	}
	rest := line[i+len(receivedAtMarker):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}
