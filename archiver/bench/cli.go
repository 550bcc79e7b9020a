package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// WriteJSON writes v, indented, to path (the commands' --out).
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ParsePositiveInts parses a comma-separated list of positive integers (a --rates flag; spaces
// around each are ignored). The caller words the usage message.
func ParsePositiveInts(s string) ([]int, error) {
	var ns []int
	for _, v := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: want positive integers", v)
		}
		ns = append(ns, n)
	}
	return ns, nil
}
