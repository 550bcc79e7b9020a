package emulator

import "testing"

// StartT starts an emulator with cfg on a free 127.0.0.1 port for a test (of this or another
// package) and closes it when the test ends. It returns the server and its base URL.
func StartT(tb testing.TB, cfg Config) (*Server, string) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("emulator.New: %v", err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatalf("emulator.Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("emulator.Close: %v", err)
		}
	})
	return s, base
}
