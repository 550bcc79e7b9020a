package liveapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
)

const (
	masked       = "***"
	maxLogBody   = 4 << 10
	minRedactLen = 4 // shorter "secrets" would mangle ordinary text; New requires real keys anyway
)

// sensitiveFields are JSON keys whose values never reach a log.
var sensitiveFields = map[string]bool{
	"auth_sign_key": true, "auth_sign": true, "secret_key": true, "sk": true,
	"security_token": true, "token": true, "password": true, "signature": true, "authorization": true,
}

var signatureRE = regexp.MustCompile(`(?i)(signature=)[0-9a-f]+`)

// redact removes the client's secrets (and extra, e.g. the auth_sign_key being sent)
// and any AK/SK signature from free text such as an echoed error message.
func (c *Client) redact(s, extra string) string {
	for _, v := range []string{c.creds.SecretKey, c.creds.SecurityToken, extra} {
		if len(v) >= minRedactLen {
			s = strings.ReplaceAll(s, v, masked)
		}
	}
	return signatureRE.ReplaceAllString(s, "${1}"+masked)
}

// maskBody renders a request/response body for the debug log with sensitive JSON
// fields masked; non-JSON bodies become a redacted, capped snippet.
func (c *Client) maskBody(body []byte, extra string) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return snippet(c.redact(string(body), extra))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // log URLs as sent
	if err := enc.Encode(maskValue(v)); err != nil {
		return masked
	}
	s := c.redact(strings.TrimSuffix(out.String(), "\n"), extra)
	if len(s) > maxLogBody {
		s = s[:maxLogBody] + "…"
	}
	return s
}

func maskValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if sensitiveFields[strings.ToLower(k)] {
				if s, ok := e.(string); ok && s == "" {
					continue // an empty key is worth seeing: it means "not set"
				}
				t[k] = masked
				continue
			}
			t[k] = maskValue(e)
		}
	case []any:
		for i, e := range t {
			t[i] = maskValue(e)
		}
	}
	return v
}

// maskHeaders copies the headers worth logging, with the signature and token masked.
func maskHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		v := strings.Join(vs, ",")
		switch http.CanonicalHeaderKey(k) {
		case "Authorization":
			v = signatureRE.ReplaceAllString(v, "${1}"+masked)
			if !strings.Contains(v, masked) { // not the AK/SK form: mask it whole
				v = masked
			}
		case aksk.HeaderSecurityToken, "X-Auth-Token", "Cookie":
			v = masked
		}
		out[k] = v
	}
	return out
}
