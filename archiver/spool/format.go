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
// Every record carries its own checksum: a torn tail after kill -9 fails it and is truncated.

const (
	magic          = "LHSPOOL1"
	flagGzip       = 1
	payloadVersion = 1
	frameHeader    = 8
	// maxPayload bounds a record so that a corrupt length cannot make recovery allocate wildly.
	maxPayload = 16 << 20
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

// errTorn marks the end of the valid records of a segment (torn or damaged tail).
var errTorn = errors.New("torn record")

// readRecord reads the next record into buf (reused). io.EOF at a clean end; errTorn when the
// rest of the file is not a valid record.
func readRecord(r *bufio.Reader, buf []byte) (Record, []byte, int64, error) {
	var fh [frameHeader]byte
	n, err := io.ReadFull(r, fh[:])
	if err != nil {
		if errors.Is(err, io.EOF) && n == 0 {
			return Record{}, buf, 0, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Record{}, buf, 0, errTorn
		}
		return Record{}, buf, 0, err
	}
	l := binary.BigEndian.Uint32(fh[:4])
	if l < 1+8+16+1 || l > maxPayload {
		return Record{}, buf, 0, errTorn
	}
	if cap(buf) < int(l) {
		buf = make([]byte, l)
	}
	buf = buf[:l]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Record{}, buf, 0, errTorn
		}
		return Record{}, buf, 0, err
	}
	if crc32.Checksum(buf, castagnoli) != binary.BigEndian.Uint32(fh[4:]) || buf[0] != payloadVersion {
		return Record{}, buf, 0, errTorn
	}
	var rec Record
	rec.ReceivedAt = time.Unix(0, int64(binary.BigEndian.Uint64(buf[1:9])))
	copy(rec.ID[:], buf[9:25])
	dl := int(buf[25])
	if 26+dl > len(buf) {
		return Record{}, buf, 0, errTorn
	}
	rec.Day = string(buf[26 : 26+dl])
	rec.Line = buf[26+dl:]
	return rec, buf, int64(frameHeader) + int64(l), nil
}
