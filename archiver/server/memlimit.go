package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Values of Config.MemoryLimit besides a size in bytes.
const (
	MemoryLimitAuto = -1 // from GOMEMLIMIT, else the cgroup limit, else none
	MemoryLimitOff  = 0
)

// minMemoryLimit refuses limits under which the garbage collector would run all the time.
const minMemoryLimit = 32 << 20

// cgroupShare is the part of a container's memory limit given to the Go heap by --memory-limit
// auto: the rest is for stacks, the runtime and the page cache of the spool files.
const cgroupShare = 0.8

type memLimitValue struct{ p *int64 }

func (v memLimitValue) String() string {
	if v.p == nil {
		return ""
	}
	switch *v.p {
	case MemoryLimitAuto:
		return "auto"
	case MemoryLimitOff:
		return "0"
	}
	return FormatSize(*v.p)
}

func (v memLimitValue) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*v.p = MemoryLimitAuto
		return nil
	case "0", "off", "none":
		*v.p = MemoryLimitOff
		return nil
	}
	n, err := ParseSize(s)
	if err != nil {
		return fmt.Errorf("%w (or auto, or 0 for none)", err)
	}
	*v.p = n
	return nil
}

func (c *Config) validateMemoryLimit() error {
	if c.MemoryLimit < MemoryLimitAuto || c.MemoryLimit > 0 && c.MemoryLimit < minMemoryLimit {
		return fmt.Errorf("--memory-limit %s is below %s: the garbage collector would run all the time; give a larger size, auto, or 0 for none", FormatSize(c.MemoryLimit), FormatSize(minMemoryLimit))
	}
	return nil
}

// memoryLimit decides the soft memory limit: the flag's size; with auto, GOMEMLIMIT when set
// (the runtime applied it already), else cgroupShare of the cgroup's memory limit, else none.
// source says where it came from, for the log.
func memoryLimit(flagVal int64, getenv func(string) string, cg cgroupFiles) (limit int64, source string) {
	switch {
	case flagVal > 0:
		return flagVal, "--memory-limit"
	case flagVal == MemoryLimitOff:
		return 0, "--memory-limit 0"
	case getenv("GOMEMLIMIT") != "":
		return 0, "GOMEMLIMIT"
	}
	if n, path := cg.limit(); n > 0 {
		return int64(float64(n) * cgroupShare), fmt.Sprintf("%d%% of the cgroup memory limit %s (%s)", int(cgroupShare*100), FormatSize(n), path)
	}
	return 0, "no cgroup memory limit found"
}

// applyMemoryLimit sets the soft memory limit (see memoryLimit) and logs it.
func applyMemoryLimit(flagVal int64, log *slog.Logger) {
	limit, source := memoryLimit(flagVal, os.Getenv, cgroupFiles{proc: "/proc/self/cgroup", root: "/sys/fs/cgroup"})
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		log.Info("soft memory limit set: the garbage collector works harder as the heap nears it", "memory_limit", FormatSize(limit), "memory_limit_bytes", limit, "source", source)
		return
	}
	if source == "GOMEMLIMIT" {
		log.Info("soft memory limit from GOMEMLIMIT", "memory_limit_bytes", debug.SetMemoryLimit(-1))
		return
	}
	log.Debug("no soft memory limit", "source", source)
}

// cgroupFiles locates this process's cgroup memory limit: proc is /proc/self/cgroup, root the
// cgroup file system mount.
type cgroupFiles struct{ proc, root string }

// unlimited is the smallest value read as "no limit" (cgroup v1 writes a page-rounded maximum).
const unlimited = 1 << 62

// limit returns the memory limit in bytes and the file it came from, or 0 when there is none or
// it cannot be read. cgroup v2 (memory.max) and v1 (memory/memory.limit_in_bytes) are both read,
// at the process's own cgroup path and at the root (inside a container's cgroup namespace the
// root is the container's cgroup).
func (c cgroupFiles) limit() (int64, string) {
	var candidates []string
	if b, err := os.ReadFile(c.proc); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			// hierarchy-ID:controllers:path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				candidates = append(candidates, filepath.Join(c.root, parts[2], "memory.max"))
			case hasController(parts[1], "memory"):
				candidates = append(candidates, filepath.Join(c.root, "memory", parts[2], "memory.limit_in_bytes"))
			}
		}
	}
	candidates = append(candidates, filepath.Join(c.root, "memory.max"), filepath.Join(c.root, "memory", "memory.limit_in_bytes"))
	for _, path := range candidates {
		n, err := readLimitFile(path)
		if err == nil && n > 0 {
			return n, path
		}
	}
	return 0, ""
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

var errNoLimit = errors.New("no limit")

func readLimitFile(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, errNoLimit
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if n <= 0 || n >= unlimited {
		return 0, errNoLimit
	}
	return n, nil
}
