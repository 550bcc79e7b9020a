package spool

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// maxInstanceLen keeps object keys well below S3's 1024-byte limit.
const maxInstanceLen = 100

// ValidateInstance checks an --instance value: it goes into object keys, so only letters,
// digits, '.', '_' and '-' are allowed.
func ValidateInstance(s string) error {
	if s == "" {
		return errors.New("instance name is empty")
	}
	if len(s) > maxInstanceLen {
		return fmt.Errorf("instance name %q is longer than %d characters", s, maxInstanceLen)
	}
	for _, c := range s {
		if !instanceChar(c) {
			return fmt.Errorf("instance name %q contains %q; use only letters, digits, '.', '_' and '-'", s, c)
		}
	}
	return nil
}

func instanceChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// NewInstanceName returns "<hostname>-<12 random hex digits>": readable, and distinct for two
// replicas even when they share a hostname.
func NewInstanceName() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, c := range host {
		if b.Len() >= 60 {
			break
		}
		if instanceChar(c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-.")
	if h == "" {
		h = "archiver"
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	return h + "-" + hex.EncodeToString(r[:])
}

// loadInstance returns flag (validated) or the name persisted in dir, creating it on first use.
func loadInstance(dir, flag string) (string, error) {
	if flag != "" {
		if err := ValidateInstance(flag); err != nil {
			return "", fmt.Errorf("--instance: %w", err)
		}
		return flag, nil
	}
	path := filepath.Join(dir, instanceFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		name := strings.TrimSpace(string(b))
		if err := ValidateInstance(name); err != nil {
			return "", fmt.Errorf("spool instance file %s: %w", path, err)
		}
		return name, nil
	case errors.Is(err, os.ErrNotExist):
		name := NewInstanceName()
		if err := fsutil.WriteFileAtomic(path, []byte(name+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("persisting instance name: %w", err)
		}
		return name, nil
	default:
		return "", fmt.Errorf("reading spool instance file: %w", err)
	}
}
