package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

// apiErrorDiagnostic turns a liveapi error into a diagnostic that shows the API's code,
// message and request ID and says what to do. liveapi errors never contain the keys.
// action is what the provider was doing ("create", "read", ...); timeout is the
// operation's timeout (for the "took too long" advice).
func apiErrorDiagnostic(d *providerData, action, domain string, timeout time.Duration, err error) diag.Diagnostic {
	var apiErr *liveapi.APIError
	if errors.As(err, &apiErr) {
		summary := fmt.Sprintf("Live API error: HTTP %d", apiErr.StatusCode)
		if apiErr.Code != "" {
			summary += " " + apiErr.Code
		}
		summary += fmt.Sprintf(" (%s publish notification for %s)", action, domain)
		msg := apiErr.Message
		if msg == "" {
			msg = http.StatusText(apiErr.StatusCode)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "The Live API refused to %s the publish notification of push domain %q.\n\n", action, domain)
		fmt.Fprintf(&b, "  Status:      HTTP %d\n", apiErr.StatusCode)
		if apiErr.Code != "" {
			fmt.Fprintf(&b, "  Error code:  %s\n", apiErr.Code)
		}
		fmt.Fprintf(&b, "  Message:     %s\n", msg)
		fmt.Fprintf(&b, "  Request ID:  %s\n", orDefault(apiErr.RequestID, "(none)"))
		fmt.Fprintf(&b, "  Request:     %s %s/v1/%s/notifications/publish?domain=%s, %d attempt(s)\n",
			apiErr.Operation, strings.TrimSuffix(d.apiLocation(), "/"), d.projectID, url.QueryEscape(domain), apiErr.Attempts)
		if h := apiHint(d, apiErr, domain); h != "" {
			b.WriteString("\n" + h)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			b.WriteString("\n\n" + timeoutHint(action, timeout))
		}
		return diag.NewErrorDiagnostic(summary, b.String())
	}

	if errors.Is(err, context.DeadlineExceeded) {
		return diag.NewErrorDiagnostic(fmt.Sprintf("Timed out trying to %s the publish notification for %s", action, domain),
			fmt.Sprintf("%v\n\n%s", err, timeoutHint(action, timeout)))
	}
	return diag.NewErrorDiagnostic(fmt.Sprintf("Cannot %s the publish notification for %s", action, domain),
		fmt.Sprintf("%v\n\nCheck that the Live API at %s is reachable from this machine (the provider's endpoint or region "+
			"argument, proxies, firewalls), then run Terraform again.", err, d.apiLocation()))
}

func timeoutHint(action string, timeout time.Duration) string {
	op := map[string]string{"create": "create", "look up": "create", "read": "read", "update": "update", "delete": "delete"}[action]
	if op == "" {
		op = "read"
	}
	return fmt.Sprintf("The operation did not finish within its %s timeout. If the Live API is slow or throttling, raise it "+
		"in the resource's timeouts block (timeouts { %s = \"10m\" }) or lower requests_per_second.", timeout, op)
}

// apiHint says what the person can do about an API error.
func apiHint(d *providerData, e *liveapi.APIError, domain string) string {
	switch {
	case e.StatusCode == http.StatusUnauthorized:
		return "The request signature was rejected (APIGW.0301 means the AK/SK signature did not verify). Check that access_key " +
			"and secret_key (or HW_ACCESS_KEY and HW_SECRET_KEY) are a matching, enabled key pair; with temporary credentials " +
			"also set security_token (HW_SECURITY_TOKEN) and make sure it has not expired. Also check this machine's clock: the " +
			"signature's date must be within 15 minutes of the server's time."
	case e.StatusCode == http.StatusForbidden:
		return fmt.Sprintf("The credentials are valid but not allowed to manage Live in project %s. Grant the IAM user Live "+
			"permissions (e.g. the \"Live FullAccess\" policy) in that project, and check project_id.", d.projectID)
	case e.StatusCode == http.StatusTooManyRequests:
		return "The Live API kept throttling the requests after every retry. Set requests_per_second in the provider block " +
			"(e.g. 2), run terraform with a lower -parallelism (e.g. -parallelism=2), or raise max_retries."
	case e.StatusCode == http.StatusBadRequest && e.Code == liveapi.CodeInvalidParameter:
		return fmt.Sprintf("The Live API answers %s for an unknown push domain as well as for invalid arguments. Check that "+
			"%q exists as a push (ingest) domain in the Live console, in project %s and in the region of %s; then check "+
			"url (http:// or https://), auth_sign_key (32 to 128 characters) and call_back_area.",
			liveapi.CodeInvalidParameter, domain, d.projectID, d.apiLocation())
	case e.StatusCode >= 500:
		retried := "even after retries"
		if e.Attempts <= 1 {
			retried = "and max_retries allowed no retry"
		}
		return "The Live service failed, " + retried + ". Try again later; if it persists, raise max_retries or contact " +
			"Huawei Cloud support with the request ID above."
	case e.StatusCode >= 300 && e.StatusCode < 400:
		return "The endpoint redirected the request: check the provider's endpoint and region arguments."
	}
	return ""
}
