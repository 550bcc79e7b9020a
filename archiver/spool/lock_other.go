//go:build !unix

package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates the lock file; exclusive locking is only enforced on Unix.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening spool lock: %w", err)
	}
	return f, nil
}
