package liveapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// APIError is every non-2xx answer after retries. Error() is worded for a person and
// includes operation, domain, status, error_code, error_msg and request ID; never the
// key or signature.
type APIError struct {
	Operation  string // "PUT", "GET", "DELETE"
	Domain     string
	StatusCode int
	Code       string // error_code
	Message    string // error_msg, or a trimmed snippet of a non-JSON body
	RequestID  string // X-Request-Id
	Attempts   int
}

var _ error = (*APIError)(nil)

// Unauthorized reports a 401: wrong key pair or a skewed clock.
func (e *APIError) Unauthorized() bool { return e.StatusCode == http.StatusUnauthorized }

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Live API %s for domain %q failed: HTTP %d", e.Operation, e.Domain, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	if msg != "" {
		b.WriteString(": " + msg)
	}
	fmt.Fprintf(&b, " (request ID %s, %s)", orNone(e.RequestID), plural(e.Attempts))
	if h := e.hint(); h != "" {
		b.WriteString("; " + h)
	}
	return b.String()
}

// hint says what the person can do about the common failures.
func (e *APIError) hint() string {
	switch {
	case e.StatusCode == http.StatusUnauthorized:
		return "check access_key/secret_key (HW_ACCESS_KEY/HW_SECRET_KEY, and the security token if the credentials are temporary), " +
			"and this machine's clock: X-Sdk-Date must be within 15 minutes of the server's time"
	case e.StatusCode == http.StatusForbidden:
		return "the credentials are valid but not allowed to do this: check the IAM permissions for Live and the project ID"
	case e.StatusCode == http.StatusTooManyRequests:
		return "the Live API is still throttling after the retries: lower the client's request rate or run fewer operations at once"
	case e.StatusCode == http.StatusBadRequest && e.Code == CodeInvalidParameter && e.Operation == http.MethodPut:
		return "check that the domain exists as a push domain in this project and region, that url is an http:// or https:// URL, " +
			"auth_sign_key is 32 to 128 characters and call_back_area is mainland_china or outside_mainland_china"
	case e.StatusCode >= 300 && e.StatusCode < 400:
		return "the endpoint redirected; check the endpoint and region settings"
	}
	return ""
}

// apiError turns a non-2xx answer into an APIError, tolerating non-JSON bodies.
// secret (the auth_sign_key sent, if any) is redacted in case the server echoes it.
func (r *response) apiError(c *Client, op, domain, secret string) *APIError {
	e := &APIError{Operation: op, Domain: domain, StatusCode: r.status, RequestID: r.requestID, Attempts: r.attempts}
	var body struct {
		ErrorCode string `json:"error_code"`
		ErrorMsg  string `json:"error_msg"`
		// Some gateways use the shorter names.
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(r.body, &body) == nil {
		e.Code = firstNonEmpty(body.ErrorCode, body.Code)
		e.Message = firstNonEmpty(body.ErrorMsg, body.Message)
	} else {
		e.Message = string(r.body) // redacted before snippet shortens it, so a cut cannot split a secret
	}
	e.Code = snippet(c.redact(e.Code, secret))
	e.Message = snippet(c.redact(e.Message, secret))
	return e
}

// requestID takes X-Request-Id, else the request_id some gateways put in the body.
func requestID(h http.Header, body []byte) string {
	if id := h.Get("X-Request-Id"); id != "" {
		return snippet(id)
	}
	var b struct {
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &b) == nil {
		return snippet(b.RequestID)
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// snippet collapses whitespace and control characters and caps the length, so an
// HTML error page or a binary body stays a readable one-liner.
func snippet(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if utf8.RuneCountInString(s) > maxSnippet {
		r := []rune(s)
		s = string(r[:maxSnippet]) + "…"
	}
	return s
}
