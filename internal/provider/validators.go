package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// Limits of the Live API (see shared/spec/live-api.md).
const (
	minAuthSignKey = 32
	maxAuthSignKey = 128
	maxDomainLen   = 253 // DNS name limit; the API allows 255 but no host name is longer than 253
	maxLabelLen    = 63

	AreaMainlandChina        = "mainland_china"
	AreaOutsideMainlandChina = "outside_mainland_china"
)

var callBackAreas = []string{AreaMainlandChina, AreaOutsideMainlandChina}

var (
	_ validator.String = checkValidator{}
)

// checkHostname returns "" when s is a DNS host name usable as a Live push domain
// (lower-case letters, digits and hyphens in dot-separated labels), else what is wrong.
func checkHostname(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxDomainLen:
		return fmt.Sprintf("must be at most %d characters long, got %d", maxDomainLen, len(s))
	case strings.HasSuffix(s, "."):
		return fmt.Sprintf("must not end with a dot, got %q", s)
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return fmt.Sprintf("must be a fully qualified host name such as push.example.com, got %q", s)
	}
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Sprintf("must not contain empty labels (\"..\" or a leading dot), got %q", s)
		case len(l) > maxLabelLen:
			return fmt.Sprintf("has a label of %d characters; each dot-separated label must be at most %d", len(l), maxLabelLen)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Sprintf("has the label %q which starts or ends with a hyphen", l)
		}
		for _, r := range l {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			case r >= 'A' && r <= 'Z':
				return fmt.Sprintf("must be lower case (Live stores domains in lower case), got %q; use %q", s, strings.ToLower(s))
			default:
				return fmt.Sprintf("may only contain letters a-z, digits, hyphens and dots, got %q in %q", r, s)
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return fmt.Sprintf("must be a host name, not an IP address, got %q", s)
	}
	return ""
}

// checkValidator adapts a check function (empty answer = valid) to a plan-time validator, so each
// rule is written once as a plain function that unit tests call directly.
type checkValidator struct {
	summary     string
	description string
	check       func(string) string
}

var (
	hostnameValidator = checkValidator{"Invalid push domain",
		"must be a lower-case DNS host name (dot-separated labels of 1-63 letters, digits or hyphens; at most 253 characters)",
		checkHostname}
	httpURLValidator = checkValidator{"Invalid URL", "must be an absolute http:// or https:// URL with a host", checkHTTPURL}
	// keyLengthValidator checks the callback signing key's length; its message gives the length,
	// never the key.
	keyLengthValidator = stringvalidator.UTF8LengthBetween(minAuthSignKey, maxAuthSignKey)
	// callBackAreaValidator: the stock message lists the accepted values.
	callBackAreaValidator = stringvalidator.OneOf(callBackAreas...)
)

func (v checkValidator) Description(context.Context) string { return v.description }
func (v checkValidator) MarkdownDescription(context.Context) string {
	return v.description
}
func (v checkValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if msg := v.check(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, fmt.Sprintf("Attribute %s %s.", req.Path, msg))
	}
}
