package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/function"

	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

var _ function.Function = callbackSignatureFunction{}

// NewCallbackSignatureFunction is provider::livehook::callback_signature. It needs no provider
// configuration: it signs locally with the same code the archiver verifies with.
func NewCallbackSignatureFunction() function.Function { return callbackSignatureFunction{} }

type callbackSignatureFunction struct{}

func (callbackSignatureFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "callback_signature"
}

func (callbackSignatureFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "The auth_sign a publish callback carries",
		MarkdownDescription: "Returns the `auth_sign` value Huawei Cloud Live puts into a `PUBLISH` or `PUBLISH_DONE` callback " +
			"for a domain whose notification has `auth_sign_key`: the lower-case hex HMAC-SHA256, keyed with the key, of " +
			"`event + domain + app + stream + auth_timestamp` (no separators). Use it in `check` blocks, or to build " +
			"signed test callbacks for your own receiver. It runs locally and needs no provider credentials. " +
			"When `key` is sensitive, so is the result.",
		Parameters: []function.Parameter{
			function.StringParameter{Name: "key", MarkdownDescription: "The domain's `auth_sign_key` (32 to 128 characters)."},
			function.StringParameter{Name: "event", MarkdownDescription: "`PUBLISH` or `PUBLISH_DONE`."},
			function.StringParameter{Name: "domain", MarkdownDescription: "Push domain, e.g. `push.example.com`."},
			function.StringParameter{Name: "app", MarkdownDescription: "Application name, e.g. `live`."},
			function.StringParameter{Name: "stream", MarkdownDescription: "Stream name."},
			function.Int64Parameter{Name: "auth_timestamp", MarkdownDescription: "The callback's `auth_timestamp` (unix seconds)."},
		},
		Return: function.StringReturn{},
	}
}

func (callbackSignatureFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var key, event, domain, app, stream string
	var ts int64
	resp.Error = function.ConcatFuncErrors(resp.Error, req.Arguments.Get(ctx, &key, &event, &domain, &app, &stream, &ts))
	if resp.Error != nil {
		return
	}
	if msg := checkSignatureArgs(key, event, ts); msg != nil {
		resp.Error = msg
		return
	}
	resp.Error = function.ConcatFuncErrors(resp.Error, resp.Result.Set(ctx, callback.Sign(key, event, domain, app, stream, ts)))
}

// checkSignatureArgs rejects what can only be a mistake. Messages never include the key.
func checkSignatureArgs(key, event string, ts int64) *function.FuncError {
	if key == "" {
		return function.NewArgumentFuncError(0, "key must not be empty: pass the domain's auth_sign_key")
	}
	if event != callback.EventPublish && event != callback.EventPublishDone {
		return function.NewArgumentFuncError(1, fmt.Sprintf("event must be %q or %q (upper case), got %q",
			callback.EventPublish, callback.EventPublishDone, event))
	}
	if ts < 0 {
		return function.NewArgumentFuncError(5, fmt.Sprintf("auth_timestamp must be unix seconds (0 or more), got %d", ts))
	}
	return nil
}
