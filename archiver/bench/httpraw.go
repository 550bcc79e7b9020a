package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// rawConn is a minimal HTTP/1.1 client over one keep-alive TCP connection. The load generator
// uses it instead of net/http so that the client side costs a write and a buffered read per
// request (no per-request allocations, no connection pool, no goroutine per connection): the
// measurement must be capped by the target, not by the client.
type rawConn struct {
	addr    string
	timeout time.Duration // per request (write + full response); 0 = none
	c       net.Conn
	br      *bufio.Reader
}

// response is what the load generator needs from one answer.
type response struct {
	Status int
	Body   []byte // only filled when the caller asks for it
	Close  bool   // the server will close the connection after this answer
}

// errMalformed marks a response the client could not parse: the target broke HTTP/1.1.
var errMalformed = errors.New("malformed HTTP response")

func dialRaw(addr string, timeout time.Duration) (*rawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return &rawConn{addr: addr, timeout: timeout, c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (rc *rawConn) Close() error { return rc.c.Close() }

// roundTrip writes one complete pre-built request and reads one response. When keepBody is
// true the body is appended to buf and returned in response.Body; otherwise it is discarded.
// After an error the connection is unusable and must be closed.
func (rc *rawConn) roundTrip(req []byte, keepBody bool, buf []byte) (response, error) {
	if rc.timeout > 0 {
		if err := rc.c.SetDeadline(time.Now().Add(rc.timeout)); err != nil {
			return response{}, err
		}
	}
	if _, err := rc.c.Write(req); err != nil {
		return response{}, fmt.Errorf("write request: %w", err)
	}
	for {
		resp, err := readResponse(rc.br, keepBody, buf)
		if err != nil {
			return resp, err
		}
		// 1xx answers (100 Continue, 103 Early Hints) precede the real one.
		if resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
			continue
		}
		return resp, nil
	}
}

var (
	hdrContentLength    = []byte("content-length")
	hdrTransferEncoding = []byte("transfer-encoding")
	hdrConnection       = []byte("connection")
)

// readResponse parses one HTTP/1.x response from br: status line, headers, and a body framed by
// Content-Length, chunked encoding, or (no framing) the end of the connection.
func readResponse(br *bufio.Reader, keepBody bool, buf []byte) (response, error) {
	var resp response
	line, err := readLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return resp, fmt.Errorf("read status line: connection closed by the server: %w", io.ErrUnexpectedEOF)
		}
		return resp, fmt.Errorf("read status line: %w", err)
	}
	// "HTTP/1.1 200 OK": version, space, three digits, optional reason.
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	code, ok := atoi3(line[9:12])
	if !ok || (len(line) > 12 && line[12] != ' ') {
		return resp, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
	}
	resp.Status = code
	http10 := line[7] == '0'
	resp.Close = http10

	contentLength := int64(-1)
	chunked := false
	for {
		line, err := readLine(br)
		if err != nil {
			return resp, fmt.Errorf("read headers: %w", err)
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return resp, fmt.Errorf("%w: header line %q", errMalformed, truncate(line))
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 {
				return resp, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(value))
			}
			contentLength = n
		case bytes.EqualFold(name, hdrTransferEncoding):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return resp, fmt.Errorf("%w: unsupported Transfer-Encoding %q", errMalformed, truncate(value))
			}
			chunked = true
		case bytes.EqualFold(name, hdrConnection):
			if bytes.EqualFold(value, []byte("close")) {
				resp.Close = true
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				resp.Close = false
			}
		}
	}

	// Bodyless statuses (RFC 9112 6.3).
	if (code >= 100 && code < 200) || code == 204 || code == 304 {
		return resp, nil
	}
	switch {
	case chunked:
		resp.Body, err = readChunked(br, keepBody, buf)
	case contentLength >= 0:
		resp.Body, err = readN(br, contentLength, keepBody, buf)
	default:
		// No framing: the body runs to the end of the connection.
		resp.Close = true
		if keepBody {
			var b bytes.Buffer
			b.Write(buf)
			_, err = b.ReadFrom(br)
			resp.Body = b.Bytes()
		} else {
			_, err = io.Copy(io.Discard, br)
		}
	}
	if err != nil {
		return resp, fmt.Errorf("read body of %d response: %w", code, err)
	}
	return resp, nil
}

// readLine returns one CRLF- (or LF-) terminated line without its terminator. The slice is
// only valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: header line longer than %d bytes", errMalformed, br.Size())
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func readN(br *bufio.Reader, n int64, keepBody bool, buf []byte) ([]byte, error) {
	if !keepBody {
		_, err := br.Discard(int(n))
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	start := len(buf)
	buf = append(buf, make([]byte, n)...)
	_, err := io.ReadFull(br, buf[start:])
	return buf, err
}

func readChunked(br *bufio.Reader, keepBody bool, buf []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return buf, fmt.Errorf("chunk size: %w", err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 { // chunk extensions
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return buf, fmt.Errorf("%w: chunk size %q", errMalformed, truncate(line))
		}
		if size == 0 {
			// Trailer section, ended by an empty line.
			for {
				line, err := readLine(br)
				if err != nil {
					return buf, fmt.Errorf("chunked trailer: %w", err)
				}
				if len(line) == 0 {
					return buf, nil
				}
			}
		}
		if buf, err = readN(br, size, keepBody, buf); err != nil {
			return buf, err
		}
		line, err = readLine(br)
		if err != nil {
			return buf, fmt.Errorf("end of chunk: %w", err)
		}
		if len(line) != 0 {
			return buf, fmt.Errorf("%w: chunk longer than its size", errMalformed)
		}
	}
}

func atoi3(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
