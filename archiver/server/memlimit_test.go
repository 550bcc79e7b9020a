package server

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemoryLimitFlag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    []string
		want    int64
		wantErr string
	}{
		{nil, MemoryLimitAuto, ""},
		{[]string{"--memory-limit", "auto"}, MemoryLimitAuto, ""},
		{[]string{"--memory-limit", "0"}, MemoryLimitOff, ""},
		{[]string{"--memory-limit", "off"}, MemoryLimitOff, ""},
		{[]string{"--memory-limit", "200MiB"}, 200 << 20, ""},
		{[]string{"--memory-limit", "1GiB"}, 1 << 30, ""},
		{[]string{"--memory-limit", "1MiB"}, 0, "below 32MiB"},
		{[]string{"--memory-limit", "lots"}, 0, "or auto, or 0 for none"},
		{[]string{"--memory-limit", "-5MiB"}, 0, "memory-limit"},
	}
	for _, tc := range cases {
		c, err := ParseFlags(append(tc.args, "--allow-unsigned"), io.Discard)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%v: error %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case c.MemoryLimit != tc.want:
			t.Errorf("%v: MemoryLimit %d, want %d", tc.args, c.MemoryLimit, tc.want)
		}
	}
}

func TestMemoryLimitSources(t *testing.T) {
	t.Parallel()
	// A fake /proc/self/cgroup and cgroup mount per case (the real files are the host's).
	type files map[string]string
	cases := []struct {
		name    string
		flag    int64
		env     string
		files   files
		want    int64
		wantSrc string
	}{
		{"explicit size wins", 100 << 20, "50MiB", files{"memory.max": "268435456"}, 100 << 20, "--memory-limit"},
		{"0 turns it off", MemoryLimitOff, "", files{"memory.max": "268435456"}, 0, "--memory-limit 0"},
		{"GOMEMLIMIT is left to the runtime", MemoryLimitAuto, "150MiB", files{"memory.max": "268435456"}, 0, "GOMEMLIMIT"},
		{"cgroup v2 at the root (container namespace)", MemoryLimitAuto, "", files{"proc": "0::/\n", "memory.max": "268435456\n"}, 214748364, "memory.max"},
		{"cgroup v2 at the process's path", MemoryLimitAuto, "", files{"proc": "0::/kubepods/pod1\n", "kubepods/pod1/memory.max": "536870912\n", "memory.max": "max\n"}, 429496729, "kubepods/pod1/memory.max"},
		{"cgroup v2 without a limit", MemoryLimitAuto, "", files{"proc": "0::/\n", "memory.max": "max\n"}, 0, "no cgroup memory limit"},
		{"cgroup v1", MemoryLimitAuto, "", files{"proc": "4:memory:/docker/abc\n0::/\n", "memory/docker/abc/memory.limit_in_bytes": "268435456\n"}, 214748364, "memory.limit_in_bytes"},
		{"cgroup v1 without a limit", MemoryLimitAuto, "", files{"proc": "4:cpu,memory:/\n", "memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, "no cgroup memory limit"},
		{"garbage in the limit file", MemoryLimitAuto, "", files{"proc": "0::/\n", "memory.max": "lots\n"}, 0, "no cgroup memory limit"},
		{"no cgroup files at all", MemoryLimitAuto, "", files{}, 0, "no cgroup memory limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			root := filepath.Join(dir, "cgroup")
			cg := cgroupFiles{proc: filepath.Join(dir, "proc-self-cgroup"), root: root}
			for name, body := range tc.files {
				path := filepath.Join(root, name)
				if name == "proc" {
					path = cg.proc
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.env
				}
				return ""
			}
			got, src := memoryLimit(tc.flag, env, cg)
			if got != tc.want || !strings.Contains(src, tc.wantSrc) {
				t.Fatalf("limit %d from %q, want %d from %q", got, src, tc.want, tc.wantSrc)
			}
		})
	}
}
