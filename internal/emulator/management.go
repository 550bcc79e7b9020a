package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
)

// Error codes the emulator answers with (spec/live-api.md).
const (
	CodeInvalidParam = "LIVE.100011001" // invalid request parameter, unknown domain
	CodeInternal     = "LIVE.100011000" // server side (injected failures)
	CodeMethod       = "LIVE.100011011" // method not supported
	CodeAuth         = "APIGW.0301"     // AK/SK signature does not verify
	CodeNoAPI        = "APIGW.0101"     // no such API (unknown path or another project)
	CodeThrottled    = "APIGW.0308"     // rate limit reached
	CodeTooLarge     = "APIGW.0201"     // request body over 1 MiB

	// MsgAuth is the real service's wording for every AK/SK failure.
	MsgAuth = "Incorrect IAM authentication information: verify aksk signature fail"
)

var _ http.Handler = (*Server)(nil)

// apiError is the error body of the management API.
type apiError struct {
	Code   string `json:"error_code"`
	Msg    string `json:"error_msg"`
	Detail string `json:"error_detail,omitempty"`
}

// ServeHTTP answers the management API under /v1/ and the control API under /_emulator/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	if r.URL.Path == "/_emulator" || strings.HasPrefix(r.URL.Path, "/_emulator/") {
		s.serveControl(w, r)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	start := time.Now()
	s.serveManagement(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK // net/http's implicit answer
	}
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByStatus[rec.status]++
	s.mu.Unlock()
	s.log.Debug("management request", "method", r.Method, "path", r.URL.Path, "domain", r.URL.Query().Get("domain"),
		"status", rec.status, "request_id", w.Header().Get("X-Request-Id"), "duration", time.Since(start).String())
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error_code":"` + CodeInternal + `","error_msg":"could not encode the answer"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Msg: msg})
}

func (s *Server) serveManagement(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readBody(w, r)
	if tooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidParam, "could not read the request body: "+err.Error())
		return
	}

	// Authentication comes first, as at the real API gateway.
	if _, err := aksk.Verify(r, body, s.secretFor, s.now(), MaxSkew); err != nil {
		s.log.Warn("AK/SK verification failed", "reason", err.Error(), "method", r.Method, "path", r.URL.Path,
			"request_id", w.Header().Get("X-Request-Id"))
		writeJSON(w, http.StatusUnauthorized, apiError{Code: CodeAuth, Msg: MsgAuth, Detail: err.Error()})
		return
	}

	s.mu.Lock()
	f := s.faults
	ok, wait := s.bucket.take(time.Now())
	if !ok {
		s.stats.Throttled++
	}
	s.mu.Unlock()
	if !ok {
		secs := max(1, int(math.Ceil(wait.Seconds())))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, http.StatusTooManyRequests, CodeThrottled,
			fmt.Sprintf("The throttling threshold has been reached: %d requests per minute; retry after %d s", f.RateLimit, secs))
		return
	}
	if f.Latency > 0 {
		if ctxsleep.Sleep(r.Context(), f.Latency) != nil {
			return
		}
	}
	if f.FailRate > 0 && rand.Float64() < f.FailRate {
		s.mu.Lock()
		s.stats.InjectedFailures++
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, CodeInternal, "Internal server error (injected by the emulator)")
		return
	}

	project, ok := managementPath(r.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, CodeNoAPI, fmt.Sprintf("no API at %s %s; the publish-notification API is /v1/{project_id}/notifications/publish", r.Method, r.URL.Path))
		return
	}
	if project != s.cfg.ProjectID {
		writeError(w, http.StatusNotFound, CodeNoAPI, fmt.Sprintf("project %q in the path is not served by this endpoint; check the project ID for the region", project))
		return
	}
	if h := r.Header.Get(aksk.HeaderProjectID); h != "" && h != project {
		writeError(w, http.StatusNotFound, CodeNoAPI, fmt.Sprintf("X-Project-Id header %q does not match the project %q in the path", h, project))
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, PUT, DELETE")
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("method %s is not supported; use GET, PUT or DELETE", r.Method))
		return
	}

	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidParam, "malformed query string: "+err.Error())
		return
	}
	ds := q["domain"]
	if len(ds) != 1 {
		writeError(w, http.StatusBadRequest, CodeInvalidParam, "the query parameter domain is required exactly once")
		return
	}
	domain := ds[0]
	if err := validDomain(domain); err != nil {
		writeError(w, http.StatusBadRequest, CodeInvalidParam, "invalid domain: "+err.Error())
		return
	}
	s.mu.Lock()
	exists := s.domains[domain]
	s.mu.Unlock()
	if !exists {
		writeError(w, http.StatusBadRequest, CodeInvalidParam, fmt.Sprintf("domain %q does not exist: it is not a push domain of this project", domain))
		return
	}

	switch r.Method {
	case http.MethodGet:
		n, ok := s.Config(domain)
		if !ok {
			writeJSON(w, http.StatusOK, struct{}{})
			return
		}
		writeJSON(w, http.StatusOK, n)
	case http.MethodPut:
		n, err := parseNotification(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, CodeInvalidParam, err.Error())
			return
		}
		created, err := s.putConfig(domain, n)
		if err != nil {
			s.log.Error("put config", "domain", domain, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "could not store the config")
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, struct{}{})
	case http.MethodDelete:
		if _, err := s.deleteConfig(domain); err != nil {
			s.log.Error("delete config", "domain", domain, "err", err)
			writeError(w, http.StatusInternalServerError, CodeInternal, "could not store the change")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) secretFor(ak string) (string, bool) {
	if ak != s.cfg.AccessKey {
		return "", false
	}
	return s.cfg.SecretKey, true
}

// managementPath matches /v1/{project_id}/notifications/publish (a trailing slash allowed).
func managementPath(p string) (project string, ok bool) {
	parts := strings.Split(strings.TrimSuffix(p, "/"), "/")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "v1" || parts[2] == "" || parts[3] != "notifications" || parts[4] != "publish" {
		return "", false
	}
	return parts[2], true
}

// parseNotification decodes and checks a PUT body. Unknown fields are ignored, as the
// real API does; trailing data is not.
func parseNotification(body []byte) (Notification, error) {
	var n Notification
	if len(bytes.TrimSpace(body)) == 0 {
		return n, errors.New("the request body is empty; send {\"url\": \"https://...\"}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw struct {
		URL          *string `json:"url"`
		AuthSignKey  *string `json:"auth_sign_key"`
		CallBackArea *string `json:"call_back_area"`
	}
	if err := dec.Decode(&raw); err != nil {
		return n, fmt.Errorf("the request body is not a valid JSON object: %w", err)
	}
	if dec.More() {
		return n, errors.New("the request body has data after the JSON object")
	}
	if raw.URL != nil {
		n.URL = *raw.URL
	}
	if raw.AuthSignKey != nil {
		n.AuthSignKey = *raw.AuthSignKey
	}
	if raw.CallBackArea != nil {
		n.CallBackArea = *raw.CallBackArea
	}
	return n, validNotification(n)
}

// validNotification applies the documented field rules. Messages never echo the key.
func validNotification(n Notification) error {
	if n.URL == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(n.URL)
	if err != nil {
		return fmt.Errorf("url is not a valid URL: %w", err)
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return fmt.Errorf("url must start with http:// or https://, got scheme %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("url has no host")
	}
	if n.AuthSignKey != "" {
		if l := utf8.RuneCountInString(n.AuthSignKey); l < 32 || l > 128 {
			return fmt.Errorf("auth_sign_key must be 32 to 128 characters long, got %d", l)
		}
	}
	switch n.CallBackArea {
	case "", "mainland_china", "outside_mainland_china":
	default:
		return fmt.Errorf("call_back_area must be mainland_china or outside_mainland_china, got %q", n.CallBackArea)
	}
	return nil
}
