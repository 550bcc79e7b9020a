package digest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
)

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
	br := bufio.NewReaderSize(r, 256<<10)
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
