package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad usage of the overload scenario exits 2 with a message that names the flag, before anything starts.
func TestOverloadUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--ramp", "500,x"}, "--ramp"},
		{[]string{"--ramp", "0"}, "--ramp"},
		{[]string{"--modes", ","}, "--modes"},
		{[]string{"--modes", "auto,off,1s,2s"}, "--modes"},
		{[]string{"--factor", "1"}, "--factor"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--s3-bandwidth", "-1"}, "--s3-bandwidth"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := run(append([]string{"overload"}, tc.args...), &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", tc.args, code, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q does not name %s", tc.args, errb.String(), tc.want)
		}
	}
}
