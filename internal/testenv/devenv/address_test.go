package devenv_test

import (
	"testing"

	"github.com/livehook/terraform-provider-livehook/internal/provider"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
)

// devenv keeps its own copy of the provider's address so the harness does not link the provider;
// this holds the copy to the original.
func TestProviderSourceIsProviderAddress(t *testing.T) {
	if devenv.ProviderSource != provider.Address {
		t.Fatalf("devenv.ProviderSource = %q, provider.Address = %q: keep them equal", devenv.ProviderSource, provider.Address)
	}
}
