package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

// The opt-in suite against the real Huawei Cloud Live API. It is not part of `make test` (it
// needs an account and changes a push domain), so it has its own switch and skips with
// t.Skip, which LIVEHOOK_TEST_ALL=1 does not turn into a failure.
const (
	EnvLiveAcc       = "LIVEHOOK_ACC_LIVE"   // "1" runs the suite
	EnvLiveAccDomain = "LIVEHOOK_ACC_DOMAIN" // a push domain of the account with no notification config
)

// liveAPIVars are what the suite reads besides the switch.
var liveAPIVars = []string{EnvRegion, EnvProjectID, EnvAccessKey, EnvSecretKey, EnvLiveAccDomain}

// TestAccLiveAPI_lifecycle runs the emulator lifecycle (create, re-plan, updates, removal of
// optional fields, import, destroy) against the real service, so a maintainer can check the
// emulator's assumptions:
//
//	TF_ACC=1 LIVEHOOK_ACC_LIVE=1 HW_REGION_NAME=... HW_PROJECT_ID=... HW_ACCESS_KEY=... \
//	  HW_SECRET_KEY=... LIVEHOOK_ACC_DOMAIN=push.example.com \
//	  go test -count=1 -run TestAccLiveAPI ./internal/provider/
func TestAccLiveAPI_lifecycle(t *testing.T) {
	testenv.OptIn(t, EnvLiveAcc, fmt.Sprintf("against the real Live API, with TF_ACC=1 and %s (it changes that push domain's notification)",
		strings.Join(liveAPIVars, ", ")))
	if os.Getenv("TF_ACC") == "" {
		t.Fatalf("%s=1 needs TF_ACC=1 as well (terraform runs the lifecycle)", EnvLiveAcc)
	}
	var missing []string
	for _, v := range liveAPIVars {
		if strings.TrimSpace(os.Getenv(v)) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s=1 but %s not set: the suite needs credentials, the project and a test push domain", EnvLiveAcc, strings.Join(missing, ", "))
	}
	domain := os.Getenv(EnvLiveAccDomain)
	client, err := liveapi.New(liveapi.Config{
		Region:      os.Getenv(EnvRegion),
		ProjectID:   os.Getenv(EnvProjectID),
		Credentials: aksk.Credentials{AccessKey: os.Getenv(EnvAccessKey), SecretKey: os.Getenv(EnvSecretKey), SecurityToken: os.Getenv(EnvSecurityToken)},
		Endpoint:    os.Getenv(EnvEndpoint),
		UserAgent:   "terraform-provider-livehook acceptance test",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := client.Get(ctx, domain); err == nil {
		t.Fatalf("%s=%s already has a publish notification (url %s): use a test domain without one", EnvLiveAccDomain, domain, n.URL)
	} else if !errors.Is(err, liveapi.ErrNotFound) {
		t.Fatalf("reading %s before the test: %v", domain, err)
	}

	remote := func(d string, want *emulator.Notification) func(*terraform.State) error {
		return func(*terraform.State) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := client.Get(ctx, d)
			switch {
			case want == nil && errors.Is(err, liveapi.ErrNotFound):
				return nil
			case err != nil:
				return fmt.Errorf("Live API GET %s: %w", d, err)
			case want == nil:
				return fmt.Errorf("domain %s still has a publish notification: url %q", d, got.URL)
			case got.URL != want.URL || got.CallBackArea != want.CallBackArea:
				return fmt.Errorf("Live API config for %s = url %q area %q, want url %q area %q", d, got.URL, got.CallBackArea, want.URL, want.CallBackArea)
			}
			// The key is not compared: whether the API returns it is one of the things to learn.
			return nil
		}
	}
	// The provider reads everything from the environment, as a pipeline would.
	resource.Test(t, lifecycleCase("", domain, remote, remote(domain, nil)))
}
