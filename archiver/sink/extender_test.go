package sink

import "testing"

// After an extension that gained nothing, the next ExtendBackoff commits are not extended; one
// that gained keeps extending.
func TestExtenderBacksOff(t *testing.T) {
	t.Parallel()
	var x Extender
	if !x.Try() {
		t.Fatal("a fresh Extender refused")
	}
	x.Done(true)
	if !x.Try() {
		t.Fatal("refused after an extension that gained")
	}
	x.Done(false)
	for i := range ExtendBackoff {
		if x.Try() {
			t.Fatalf("commit %d after a fruitless extension was allowed to extend", i)
		}
	}
	if !x.Try() || x.Tries() != 3 {
		t.Fatalf("after the back-off: Try refused or Tries %d, want 3", x.Tries())
	}
}
