package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/livehook/terraform-provider-livehook/internal/fsutil"
)

// stateFile is what StatePath holds. It contains auth_sign_key values, so it is written 0600.
type stateFile struct {
	Version int                     `json:"version"`
	Domains []string                `json:"domains"`
	Configs map[string]Notification `json:"configs"`
}

// load merges the state file (if it exists) into s. A missing file is an empty state.
func (s *Server) load() error {
	b, err := os.ReadFile(s.cfg.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("emulator: read state file: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("emulator: state file %s is not valid JSON (fix or remove it): %w", s.cfg.StatePath, err)
	}
	for _, d := range st.Domains {
		if validDomain(d) == nil {
			s.domains[d] = true
		}
	}
	for d, n := range st.Configs {
		if validDomain(d) == nil {
			s.domains[d] = true
			s.configs[d] = n
		}
	}
	return nil
}

// persistLocked writes the state atomically (fsutil.WriteFileAtomic). Callers hold s.mu.
func (s *Server) persistLocked() error {
	if s.cfg.StatePath == "" {
		return nil
	}
	st := stateFile{Version: 1, Domains: slices.Sorted(maps.Keys(s.domains)), Configs: s.configs}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("emulator: encode state: %w", err)
	}
	if err := fsutil.WriteFileAtomic(s.cfg.StatePath, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("emulator: write state file: %w", err)
	}
	return nil
}

// validDomain: 1 to 255 characters, no spaces or control characters.
func validDomain(d string) error {
	if d == "" {
		return errors.New("domain is empty")
	}
	if len(d) > 255 {
		return fmt.Errorf("domain is %d characters long; at most 255 are allowed", len(d))
	}
	if strings.ContainsFunc(d, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' }) {
		return errors.New("domain contains spaces, slashes or control characters")
	}
	return nil
}
