package bench

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strconv"
)

// The request body is a realistic compact PUBLISH callback (~450 bytes, like the Live service
// sends, with a push URL query string in user_args). Its identity must be unique per request,
// because the archiver deduplicates on (domain, app, stream, event, publish_timestamp): the
// stream name carries the run tag, the worker number and a fixed-width sequence number, so every
// request of a run has a distinct identity while Content-Length stays constant.
//
//	stream = "bench-" + tag(6) + "-w" + worker(%03d) + "-" + seq(%010d)

const (
	seqWidth    = 10
	workerWidth = 3
	maxWorkers  = 1000
	streamKey   = `"stream":"`
	eventIDKey  = `"event_id":"`
	tagLen      = 6
	streamHead  = "bench-"
	// Query string of a push URL as OBS or ffmpeg sends it: auth_info, vhost and encoder details.
	userArgs = "auth_info=4c6e1f0b2f6a9d3e8b7c5a1d0e9f8a7b.1764115206&vhost=push.example.com" +
		"&txSecret=9f2d8c7b6a5e4d3c2b1a0f9e8d7c6b5a&txTime=692A1F80&client=obs-studio%2F30.2.3" +
		"&resolution=1920x1080&fps=30&vbitrate=6000&abitrate=160&codec=h264&profile=high" +
		"&session=7d1e6c2a-3b4f-4e8a-9c0d-1f2e3a4b5c6d"
)

// newRunTag returns a random 6-character tag so identities never collide with an earlier run
// writing to the same bucket or spool.
func newRunTag() string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b [tagLen]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (Go 1.24+ panics instead of erroring)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}

// requestTemplate is one worker's complete request (headers + body); the sequence number is
// rewritten in place before each send.
type requestTemplate struct {
	buf    []byte
	seqOff int // offset of the seqWidth sequence digits in buf
}

// bodyFor returns the callback body of (tag, worker, seq).
func bodyFor(tag string, worker int, seq uint64, publishTS int64) []byte {
	return fmt.Appendf(nil,
		`{"domain":"push.example.com","app":"live","stream":"%s%s-w%0*d-%0*d","user_args":"%s",`+
			`"client_ip":"116.31.96.221","node_ip":"113.96.102.42","publish_timestamp":"%d","event":"PUBLISH"}`,
		streamHead, tag, workerWidth, worker, seqWidth, seq, userArgs, publishTS)
}

// newRequestTemplate builds the raw HTTP/1.1 request of one worker.
func newRequestTemplate(host, path, tag string, worker int, publishTS int64) (*requestTemplate, error) {
	if worker < 0 || worker >= maxWorkers {
		return nil, fmt.Errorf("worker %d out of range 0..%d", worker, maxWorkers-1)
	}
	if len(tag) != tagLen {
		return nil, fmt.Errorf("run tag %q must have %d characters", tag, tagLen)
	}
	body := bodyFor(tag, worker, 0, publishTS)
	head := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: livehook-archiver-bench\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, host, len(body))
	marker := fmt.Appendf(nil, "%s%s-w%0*d-", streamHead, tag, workerWidth, worker)
	i := bytes.Index(body, marker)
	if i < 0 {
		return nil, fmt.Errorf("internal error: stream marker not in body")
	}
	return &requestTemplate{buf: append(head, body...), seqOff: len(head) + i + len(marker)}, nil
}

// setSeq writes seq into the template as seqWidth zero-padded digits, without allocating.
func (t *requestTemplate) setSeq(seq uint64) {
	d := t.buf[t.seqOff : t.seqOff+seqWidth]
	for i := seqWidth - 1; i >= 0; i-- {
		d[i] = byte('0' + seq%10)
		seq /= 10
	}
}

// parseIdentity finds the bench stream name in an archived line (or a naive object key) and
// returns the worker and sequence number it encodes. ok is false for lines of another run or
// not written by this benchmark.
func parseIdentity(line []byte, tag string) (worker int, seq uint64, ok bool) {
	i := bytes.Index(line, []byte(streamHead+tag+"-w"))
	if i < 0 {
		return 0, 0, false
	}
	rest := line[i+len(streamHead)+tagLen+2:]
	if len(rest) < workerWidth+1+seqWidth || rest[workerWidth] != '-' {
		return 0, 0, false
	}
	w, err := strconv.ParseUint(string(rest[:workerWidth]), 10, 16)
	if err != nil {
		return 0, 0, false
	}
	s, err := strconv.ParseUint(string(rest[workerWidth+1:workerWidth+1+seqWidth]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return int(w), s, true
}

// fieldValue returns the raw string value of a top-level "key":"value" pair found by a plain
// scan (the bench's own values contain no escapes), or nil.
func fieldValue(line []byte, key string) []byte {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	v := line[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}
