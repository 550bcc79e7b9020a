package cli

import (
	"bytes"
	"testing"
)

func TestOneLineAndCell(t *testing.T) {
	for in, want := range map[string]string{
		"live/demo":         "live/demo",
		"a\nb\tc":           "a?b?c",
		"\x1b[31mred":       "?[31mred",
		"evil\u202etxt.exe": "evil?txt.exe",
		"\u0085next":        "?next",
		"直播":                "直播",
	} {
		if got := OneLine(in); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
	if Cell("") != "-" || Cell("x\ny") != "x?y" {
		t.Errorf("Cell: %q %q", Cell(""), Cell("x\ny"))
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		done bool
	}{
		{nil, 0, false},
		{[]string{"-h"}, 0, true},
		{[]string{"--nope"}, 2, true},
	} {
		var stderr bytes.Buffer
		fs := NewFlagSet("x", "usage: archiver x\n", &stderr)
		code, done := Parse(fs, tt.args)
		if code != tt.code || done != tt.done {
			t.Errorf("Parse(%v) = %d, %v; want %d, %v", tt.args, code, done, tt.code, tt.done)
		}
		if tt.done && !bytes.Contains(stderr.Bytes(), []byte("usage: archiver x")) {
			t.Errorf("Parse(%v) printed no usage: %q", tt.args, stderr.String())
		}
	}
	if Range("2026-11-01", "") != "2026-11-01..2026-11-01" || Range("a", "b") != "a..b" {
		t.Error("Range")
	}
}
