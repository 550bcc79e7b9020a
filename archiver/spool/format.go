package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// On-disk format of a segment file (all integers big-endian):
//
//	header: "LHSPOOL1" | flags u8 (bit 0: gzip) | instance length u16 | instance | CRC-32C u32 of the preceding header bytes
//	record: payload length u32 | CRC-32C u32 of payload | payload
//	payload: version u8 (1) | received_at unix nanos i64 | event id [16] | day length u8 | day | archive line
//
// The instance and gzip choice live in the header so that a recovered segment is uploaded under
// exactly the key it would have had before the crash, whatever the flags of the new process.
// Every record carries its own checksum. A frame is recognised by a length in range, the payload
// version byte, a day of DayLayout's length and the checksum: after damaged bytes the reader
// searches forward for the next offset where all of these hold (resynchronises), so one damaged
// record costs that record only.

// MaxBody is the largest callback body a spool record holds with room for the archive field
// intake adds (well under envelopeRoom): --max-body may not exceed it.
const MaxBody = 16 << 20

const (
	magic          = "LHSPOOL1"
	flagGzip       = 1
	payloadVersion = 1
	frameHeader    = 8
	envelopeRoom   = 64 << 10
	// maxPayload bounds a record so that a corrupt length cannot make a reader allocate wildly.
	maxPayload = MaxBody + envelopeRoom
	minPayload = 1 + 8 + 16 + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one spooled event as read back.
type Record struct {
	ReceivedAt time.Time
	ID         [16]byte
	Day        string
	Line       []byte // valid only during the callback it is passed to
}

func appendHeader(dst []byte, instance string, gzip bool) []byte {
	start := len(dst)
	dst = append(dst, magic...)
	var flags byte
	if gzip {
		flags |= flagGzip
	}
	dst = append(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(instance)))
	dst = append(dst, instance...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// readHeader parses a segment header and returns the instance, the gzip flag and the header size.
func readHeader(r *bufio.Reader) (instance string, gzip bool, n int64, err error) {
	var fixed [len(magic) + 3]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return "", false, 0, fmt.Errorf("segment header: %w", err)
	}
	if string(fixed[:len(magic)]) != magic {
		return "", false, 0, errors.New("segment header: bad magic")
	}
	l := int(binary.BigEndian.Uint16(fixed[len(magic)+1:]))
	rest := make([]byte, l+4)
	if _, err := io.ReadFull(r, rest); err != nil {
		return "", false, 0, fmt.Errorf("segment header: %w", err)
	}
	h := crc32.Update(crc32.Checksum(fixed[:], castagnoli), castagnoli, rest[:l])
	if h != binary.BigEndian.Uint32(rest[l:]) {
		return "", false, 0, errors.New("segment header: checksum mismatch")
	}
	return string(rest[:l]), fixed[len(magic)]&flagGzip != 0, int64(len(fixed) + l + 4), nil
}

// appendRecord frames one entry.
func appendRecord(dst []byte, at time.Time, id [16]byte, day string, line []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // length + crc, filled below
	p := len(dst)
	dst = append(dst, payloadVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, id[:]...)
	dst = append(dst, byte(len(day)))
	dst = append(dst, day...)
	dst = append(dst, line...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-p))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[p:], castagnoli))
	return dst
}

// parseFrame decodes the frame at the start of b. ok is false when b does not start with an
// intact frame (damaged, torn, or not a frame boundary).
func parseFrame(b []byte) (rec Record, size int, ok bool) {
	if len(b) < frameHeader+minPayload {
		return Record{}, 0, false
	}
	l := int(binary.BigEndian.Uint32(b[:4]))
	if l < minPayload || l > maxPayload || len(b)-frameHeader < l {
		return Record{}, 0, false
	}
	p := b[frameHeader : frameHeader+l]
	if p[0] != payloadVersion {
		return Record{}, 0, false
	}
	dl := int(p[25])
	if 26+dl > len(p) {
		return Record{}, 0, false
	}
	if crc32.Checksum(p, castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		return Record{}, 0, false
	}
	rec.ReceivedAt = time.Unix(0, int64(binary.BigEndian.Uint64(p[1:9])))
	copy(rec.ID[:], p[9:25])
	rec.Day = string(p[26 : 26+dl])
	rec.Line = p[26+dl:]
	return rec, frameHeader + l, true
}

// scanFrames calls rec for every intact frame of b from off on, in order, and damaged for every
// run of bytes between them that is not a frame (resynchronising on the next intact frame). A run
// of zero bytes at the end is the unused part of a pre-zeroed segment, not damage.
func scanFrames(b []byte, off int, rec func(Record) error, damaged func(start, end int)) error {
	for off < len(b) {
		r, n, ok := parseFrame(b[off:])
		if ok {
			if err := rec(r); err != nil {
				return err
			}
			off += n
			continue
		}
		if allZero(b[off:]) {
			return nil
		}
		next := off + 1
		for ; next < len(b); next++ {
			if _, _, ok := parseFrame(b[next:]); ok {
				break
			}
		}
		end := next
		if end == len(b) { // damage up to the end; keep a trailing zero fill out of it
			for end > off && b[end-1] == 0 {
				end--
			}
		}
		damaged(off, end)
		off = next
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
