package provider

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// sensitiveFieldKeys are log field names whose values are always masked, whatever the
// liveapi client already did: defence in depth for secrets.
var sensitiveFieldKeys = []string{
	"secret_key", "security_token", "auth_sign_key", "authorization", "signature",
	"x-security-token", "Authorization", "X-Security-Token",
}

// tflogHandler forwards log/slog records (the liveapi client logs through slog) to tflog,
// so they appear in Terraform's TF_LOG output of this provider. The tflog logger lives in
// the context Terraform passes to every RPC, so records logged without that context
// (slog's non-Context methods) are dropped.
type tflogHandler struct {
	component string
	secrets   []string
	fields    map[string]any
	group     string
}

var _ slog.Handler = (*tflogHandler)(nil)

func newTFLogHandler(component string, secrets []string) *tflogHandler {
	var s []string
	for _, v := range secrets {
		if v != "" {
			s = append(s, v)
		}
	}
	return &tflogHandler{component: component, secrets: s, fields: map[string]any{}}
}

func (h *tflogHandler) Enabled(ctx context.Context, level slog.Level) bool {
	switch {
	case level >= slog.LevelError:
		return tflog.IsError(ctx)
	case level >= slog.LevelWarn:
		return tflog.IsWarn(ctx)
	case level >= slog.LevelInfo:
		return tflog.IsInfo(ctx)
	default:
		return tflog.IsDebug(ctx)
	}
}

func (h *tflogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]any, len(h.fields)+r.NumAttrs()+1)
	for k, v := range h.fields {
		fields[k] = v
	}
	fields["component"] = h.component
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, h.group, a)
		return true
	})
	ctx = maskSecrets(ctx, h.secrets...)
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h *tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := h.clone()
	for _, a := range attrs {
		addAttr(n.fields, n.group, a)
	}
	return n
}

func (h *tflogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := h.clone()
	if n.group != "" {
		n.group += "."
	}
	n.group += name
	return n
}

func (h *tflogHandler) clone() *tflogHandler {
	f := make(map[string]any, len(h.fields))
	for k, v := range h.fields {
		f[k] = v
	}
	return &tflogHandler{component: h.component, secrets: h.secrets, fields: f, group: h.group}
}

func addAttr(fields map[string]any, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	if a.Value.Kind() == slog.KindGroup {
		for _, ga := range a.Value.Group() {
			addAttr(fields, strings.TrimPrefix(key, "."), ga)
		}
		return
	}
	switch a.Value.Kind() {
	case slog.KindDuration: // tflog would print nanoseconds as a float
		fields[key] = a.Value.Duration().String()
	case slog.KindTime:
		fields[key] = a.Value.Time().Format(time.RFC3339Nano)
	default:
		fields[key] = a.Value.Any()
	}
}

// maskSecrets makes tflog replace the given strings (and values of well-known secret
// fields) with "***" in messages and fields logged through the returned context.
func maskSecrets(ctx context.Context, secrets ...string) context.Context {
	var s []string
	for _, v := range secrets {
		if v != "" {
			s = append(s, v)
		}
	}
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, sensitiveFieldKeys...)
	if len(s) > 0 {
		ctx = tflog.MaskMessageStrings(ctx, s...)
		ctx = tflog.MaskAllFieldValuesStrings(ctx, s...)
	}
	return ctx
}
