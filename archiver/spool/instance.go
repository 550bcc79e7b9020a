package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/livehook/terraform-provider-livehook/archiver/layout"
	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// loadInstance returns flag (validated) or the name persisted in dir, creating it on first use.
func loadInstance(dir, flag string) (string, error) {
	if flag != "" {
		if err := layout.ValidateInstance(flag); err != nil {
			return "", fmt.Errorf("--instance: %w", err)
		}
		return flag, nil
	}
	path := filepath.Join(dir, instanceFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		name := strings.TrimSpace(string(b))
		if err := layout.ValidateInstance(name); err != nil {
			return "", fmt.Errorf("spool instance file %s: %w", path, err)
		}
		return name, nil
	case errors.Is(err, os.ErrNotExist):
		name := layout.NewInstanceName()
		if err := fsutil.WriteFileAtomic(path, []byte(name+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("persisting instance name: %w", err)
		}
		return name, nil
	default:
		return "", fmt.Errorf("reading spool instance file: %w", err)
	}
}
