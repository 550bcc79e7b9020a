package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Control API error codes: same body shape as the management API, own prefix.
const (
	ctlInvalid  = "EMULATOR.INVALID"
	ctlNotFound = "EMULATOR.NOT_FOUND"
	ctlConflict = "EMULATOR.CONFLICT"
	ctlMethod   = "EMULATOR.METHOD_NOT_ALLOWED"
	ctlTooLarge = "EMULATOR.TOO_LARGE"
	ctlInternal = "EMULATOR.INTERNAL"
)

// serveControl answers /_emulator/...: a local tool's API, without authentication.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	body, tooLarge, err := readBody(w, r)
	if tooLarge {
		writeError(w, http.StatusRequestEntityTooLarge, ctlTooLarge, fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, ctlInvalid, "could not read the request body: "+err.Error())
		return
	}
	route := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/_emulator"), "/")
	allow := func(methods ...string) bool {
		for _, m := range methods {
			if r.Method == m {
				return true
			}
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, ctlMethod, fmt.Sprintf("%s /_emulator%s is not supported; use %s", r.Method, route, strings.Join(methods, " or ")))
		return false
	}
	switch route {
	case "/healthz":
		if allow(http.MethodGet, http.MethodHead) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	case "/publish", "/publish_done":
		if allow(http.MethodPost) {
			s.ctlPublish(w, r, body, route == "/publish_done")
		}
	case "/deliveries":
		if !allow(http.MethodGet, http.MethodDelete) {
			return
		}
		if r.Method == http.MethodDelete {
			s.mu.Lock()
			s.dels = nil
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		d := s.Deliveries()
		if d == nil {
			d = []Delivery{}
		}
		writeJSON(w, http.StatusOK, d)
	case "/domains":
		if !allow(http.MethodGet, http.MethodPost) {
			return
		}
		if r.Method == http.MethodGet {
			writeJSON(w, http.StatusOK, s.Domains())
			return
		}
		var req struct {
			Domain string `json:"domain"`
		}
		if err := decodeStrict(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, ctlInvalid, `body must be {"domain":"push.example.com"}: `+err.Error())
			return
		}
		added, err := s.addDomain(req.Domain)
		switch {
		case err != nil && validDomain(req.Domain) != nil:
			writeError(w, http.StatusBadRequest, ctlInvalid, "invalid domain: "+err.Error())
		case err != nil:
			writeError(w, http.StatusInternalServerError, ctlInternal, err.Error())
		case added:
			writeJSON(w, http.StatusCreated, req)
		default:
			writeJSON(w, http.StatusOK, req) // already there
		}
	case "/faults":
		if !allow(http.MethodGet, http.MethodPut) {
			return
		}
		if r.Method == http.MethodPut {
			f := s.Faults() // fields missing from the body keep their value
			if err := decodeStrict(body, &f); err != nil {
				writeError(w, http.StatusBadRequest, ctlInvalid, `body must be like {"fail_rate":0.1,"rate_limit":300,"latency":"50ms"}: `+err.Error())
				return
			}
			if err := validFaults(f); err != nil {
				writeError(w, http.StatusBadRequest, ctlInvalid, err.Error())
				return
			}
			s.SetFaults(f)
		}
		writeJSON(w, http.StatusOK, s.Faults())
	case "/configs":
		s.ctlConfigs(w, r, body, allow)
	case "/stats":
		if !allow(http.MethodGet, http.MethodDelete) {
			return
		}
		if r.Method == http.MethodDelete {
			s.mu.Lock()
			s.stats = Stats{ByStatus: map[int]int64{}}
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, s.Stats())
	default:
		writeError(w, http.StatusNotFound, ctlNotFound, fmt.Sprintf("no control endpoint %s; see /_emulator/{publish,publish_done,deliveries,domains,faults,configs,stats,healthz}", r.URL.Path))
	}
}

func (s *Server) ctlPublish(w http.ResponseWriter, r *http.Request, body []byte, done bool) {
	var st Stream
	if err := decodeStrict(body, &st); err != nil {
		writeError(w, http.StatusBadRequest, ctlInvalid, `body must be {"domain":..,"app":..,"stream":..,"user_args":..,"client_ip":..}: `+err.Error())
		return
	}
	var rep *Report
	var err error
	if done {
		rep, err = s.PublishDone(r.Context(), st)
	} else {
		rep, err = s.Publish(r.Context(), st)
	}
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, rep)
	case errors.Is(err, ErrNotDelivered) && rep != nil:
		writeJSON(w, http.StatusBadGateway, rep)
	case errors.Is(err, ErrSessionActive), errors.Is(err, ErrNoSession):
		writeError(w, http.StatusConflict, ctlConflict, err.Error())
	case errors.Is(err, ErrInvalidStream), errors.Is(err, ErrUnknownDomain), errors.Is(err, ErrNoConfig):
		writeError(w, http.StatusBadRequest, ctlInvalid, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, ctlInternal, err.Error())
	}
}

func (s *Server) ctlConfigs(w http.ResponseWriter, r *http.Request, body []byte, allow func(...string) bool) {
	if !allow(http.MethodGet, http.MethodPut, http.MethodDelete) {
		return
	}
	domain := r.URL.Query().Get("domain")
	if err := validDomain(domain); err != nil {
		writeError(w, http.StatusBadRequest, ctlInvalid, "query parameter domain: "+err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet:
		n, ok := s.Config(domain)
		if !ok {
			writeError(w, http.StatusNotFound, ctlNotFound, fmt.Sprintf("domain %q has no publish notification config", domain))
			return
		}
		writeJSON(w, http.StatusOK, n)
	case http.MethodPut:
		var n Notification
		if err := decodeStrict(body, &n); err != nil {
			writeError(w, http.StatusBadRequest, ctlInvalid, `body must be {"url":..,"auth_sign_key":..,"call_back_area":..}: `+err.Error())
			return
		}
		if err := s.SetConfig(domain, n); err != nil {
			writeError(w, http.StatusBadRequest, ctlInvalid, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, n)
	case http.MethodDelete:
		existed, err := s.deleteConfig(domain)
		switch {
		case err != nil:
			writeError(w, http.StatusInternalServerError, ctlInternal, err.Error())
		case !existed:
			writeError(w, http.StatusNotFound, ctlNotFound, fmt.Sprintf("domain %q has no publish notification config", domain))
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// decodeStrict decodes exactly one JSON value, refusing unknown fields (typos in a test
// script should fail loudly).
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}
