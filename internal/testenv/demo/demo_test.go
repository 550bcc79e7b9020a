package demo

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// TestEndToEnd runs the demo flow (`make demo`) and asserts on what it observed, so CI proves
// the whole chain: Terraform -> Live API (emulator) -> callback -> archiver -> S3 -> read-back.
// It needs terraform (TF_ACC=1) and VersityGW (`make tools`); without them it skips (fails under
// LIVEHOOK_TEST_ALL=1, as in `make test`).
func TestEndToEnd(t *testing.T) {
	testenv.Terraform(t)
	testenv.Binary(t, "versitygw", versitygw.Binary)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const streams = 3
	var out strings.Builder
	res, err := Run(ctx, Options{Out: &out, WorkDir: t.TempDir(), Streams: streams})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo failed: %v", err)
	}

	// Terraform put the config in place and took it away again.
	if res.ConfigAfterApply == nil {
		t.Fatal("no config in the emulator after apply")
	}
	if want := res.ArchiverURL + "/callback"; res.ConfigAfterApply.URL != want {
		t.Errorf("config url after apply = %q, want %q", res.ConfigAfterApply.URL, want)
	}
	if res.ConfigAfterApply.AuthSignKey == "" {
		t.Error("config after apply has no auth_sign_key: callbacks would be unsigned")
	}
	if !res.ConfigGoneAfterDestroy {
		t.Error("config still in the emulator after destroy")
	}
	if got := res.TerraformOutputs["callback_url"]; got != res.ArchiverURL+"/callback" {
		t.Errorf("terraform output callback_url = %q", got)
	}

	// Every delivered event is archived exactly once, and nothing else is.
	// The business server keeps getting every callback, once, signed, through the relay.
	if got := res.TerraformOutputs["archiver_forward"]; !strings.HasPrefix(got, "business=http://127.0.0.1:") {
		t.Errorf("output archiver_forward = %q, want business=<the business server's URL>", got)
	}
	if len(res.Business) != 2*streams || res.BusinessInvalid != 0 || res.BusinessRepeats != 0 {
		t.Errorf("business server got %d events (%d repeats, %d invalid signatures), want %d each once and valid", len(res.Business), res.BusinessRepeats, res.BusinessInvalid, 2*streams)
	}
	if len(res.Delivered) != 2*streams {
		t.Errorf("emulator delivered %d events, want %d (PUBLISH and PUBLISH_DONE per stream)", len(res.Delivered), 2*streams)
	}
	archived := map[Event]int{}
	for _, a := range res.Archived {
		archived[a.Event]++
		if a.Signature != "verified" {
			t.Errorf("%s archived with signature %q, want verified (the domain has a key)", a.Event, a.Signature)
		}
		if a.EventID == "" {
			t.Errorf("%s archived without event_id", a.Event)
		}
	}
	for _, e := range res.Delivered {
		if n := archived[e]; n != 1 {
			t.Errorf("%s is in the archive %d times, want exactly once", e, n)
		}
	}
	if len(res.Archived) != len(res.Delivered) {
		t.Errorf("archive has %d events, emulator delivered %d", len(res.Archived), len(res.Delivered))
	}
	if len(res.Missing)+len(res.Duplicated)+len(res.Unexpected) != 0 {
		t.Errorf("Run's own check: missing %v, duplicated %v, unexpected %v", res.Missing, res.Duplicated, res.Unexpected)
	}

	// The redelivery was acknowledged and not stored twice.
	if res.Redelivery.Status != 200 {
		t.Errorf("redelivery answered %d, want 200", res.Redelivery.Status)
	}
	if res.Redelivery.Event.Domain == "" || !res.Redelivery.StoredOnce || archived[res.Redelivery.Event] != 1 {
		t.Errorf("redelivered %s: stored once = %t (archive count %d)", res.Redelivery.Event, res.Redelivery.StoredOnce, archived[res.Redelivery.Event])
	}

	// Objects are day-partitioned gzip JSON Lines under the prefix.
	if len(res.Objects) == 0 {
		t.Fatal("no objects in the bucket")
	}
	key := regexp.MustCompile(`^` + Prefix + `/dt=\d{4}-\d{2}-\d{2}/[^/]+\.jsonl\.gz$`)
	for _, o := range res.Objects {
		if !key.MatchString(o.Key) {
			t.Errorf("object %q is not %s/dt=YYYY-MM-DD/NAME.jsonl.gz", o.Key, Prefix)
		}
		if o.Size == 0 {
			t.Errorf("object %q is empty", o.Key)
		}
	}
	t.Logf("end to end in %.1fs (build %.1fs)", res.Elapsed.Seconds(), res.Build.Seconds())
}
