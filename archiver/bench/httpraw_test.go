package bench

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Against a real net/http server: what the targets actually send.
func TestRawConnAgainstNetHTTP(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/ok":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok","len":` + itoa(len(body)) + `}`))
		case "/busy":
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"spool full"}`, http.StatusServiceUnavailable)
		case "/chunked":
			_, _ = w.Write([]byte("first,"))
			w.(http.Flusher).Flush() // forces Transfer-Encoding: chunked
			_, _ = w.Write([]byte("second"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		}
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	rc, err := dialRaw(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	req := func(path string) []byte {
		body := `{"a":1}`
		return []byte("POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body)
	}
	// All on one keep-alive connection, in sequence: each parse must consume exactly one answer.
	tests := []struct {
		path   string
		status int
		body   string
		close  bool
	}{
		{"/ok", 200, `{"status":"ok","len":7}`, false},
		{"/busy", 503, `{"error":"spool full"}` + "\n", false},
		{"/chunked", 200, "first,second", false},
		{"/empty", 204, "", false},
		{"/ok", 200, `{"status":"ok","len":7}`, false},
		{"/close", 200, "bye", true},
	}
	for _, tc := range tests {
		resp, err := rc.roundTrip(req(tc.path), true, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if resp.Status != tc.status || string(resp.Body) != tc.body || resp.Close != tc.close {
			t.Errorf("%s: got %d %q close=%v, want %d %q close=%v", tc.path, resp.Status, resp.Body, resp.Close, tc.status, tc.body, tc.close)
		}
	}
	// Discard mode reads the same framing without keeping the body.
	rc2, err := dialRaw(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	for _, p := range []string{"/busy", "/chunked", "/ok"} {
		resp, err := rc2.roundTrip(req(p), false, nil)
		if err != nil || resp.Body != nil {
			t.Fatalf("%s discard: %v, body %q", p, err, resp.Body)
		}
	}
}

// Canned byte streams: edge cases and broken servers.
func TestReadResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		status  int
		body    string
		close   bool
		wantErr error // nil = success; errMalformed / io.ErrUnexpectedEOF checked with errors.Is
		anyErr  bool
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: "hello"},
		{name: "lower-case header and LF only", in: "HTTP/1.1 201 Created\ncontent-length: 2\n\nhi", status: 201, body: "hi"},
		{name: "no reason phrase", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "503 with body", in: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 13\r\n\r\n{\"error\":\"x\"}", status: 503, body: `{"error":"x"}`},
		{name: "chunked with extension and trailer", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n", status: 200, body: "abcde"},
		{name: "100 continue first", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x", close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x", close: true},
		{name: "body to EOF", in: "HTTP/1.1 200 OK\r\n\r\nuntil the end", status: 200, body: "until the end", close: true},
		{name: "304 has no body", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", status: 304},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH\r\n\r\n", wantErr: errMalformed},
		{name: "bad status code", in: "HTTP/1.1 2x0 OK\r\n\r\n", wantErr: errMalformed},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: errMalformed},
		{name: "unsupported transfer-encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", wantErr: errMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", wantErr: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: errMalformed},
		{name: "chunk overrun", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n", wantErr: errMalformed},
		{name: "short body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", wantErr: io.ErrUnexpectedEOF},
		{name: "closed before answer", in: "", wantErr: io.ErrUnexpectedEOF},
		{name: "truncated headers", in: "HTTP/1.1 200 OK\r\nContent-Le", anyErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, keep := range []bool{true, false} {
				br := bufio.NewReaderSize(strings.NewReader(tc.in), 64)
				var resp response
				var err error
				for { // what roundTrip does: skip 1xx
					resp, err = readResponse(br, keep, nil)
					if err != nil || resp.Status >= 200 {
						break
					}
				}
				if tc.wantErr != nil || tc.anyErr {
					if err == nil {
						t.Fatalf("keep=%v: got %d %q, want an error", keep, resp.Status, resp.Body)
					}
					if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
						t.Fatalf("keep=%v: error %v, want %v", keep, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("keep=%v: %v", keep, err)
				}
				wantBody := tc.body
				if !keep {
					wantBody = ""
				}
				if resp.Status != tc.status || string(resp.Body) != wantBody || resp.Close != tc.close {
					t.Fatalf("keep=%v: got %d %q close=%v, want %d %q close=%v", keep, resp.Status, resp.Body, resp.Close, tc.status, wantBody, tc.close)
				}
			}
		})
	}
}

// A server that stops answering: the per-request timeout turns it into an error, not a hang.
func TestRawConnTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, c) // read, never answer
		}
	}()
	rc, err := dialRaw(ln.Addr().String(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = rc.roundTrip([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want a timeout", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
