// Package cli is what the archiver's read-side commands (events, sessions, verify, compact) spell
// the same way: the flags that select the archive, -h handling, and values made safe to print.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/livehook/terraform-provider-livehook/archiver/storage"
)

// NewFlagSet returns the flag set of `archiver NAME`: errors and -h go to stderr, and -h prints
// usage before the flags.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("archiver "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args. When done is true the command ends with code: 0 after -h, 2 after a flag
// error (the flag package has already said what is wrong and printed the usage).
func Parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	default:
		return 2, true
	}
}

// StoreFlags registers the flags that select the archive (--store, --s3-endpoint, --s3-region).
func StoreFlags(fs *flag.FlagSet, o *storage.Options) {
	fs.StringVar(&o.URL, "store", "", "archive location: s3://BUCKET/PREFIX or file:///DIR (default: file store ./archive)")
	fs.StringVar(&o.Endpoint, "s3-endpoint", "", "S3-compatible endpoint, e.g. http://127.0.0.1:7070 (default: AWS)")
	fs.StringVar(&o.Region, "s3-region", "", "S3 region (default: $AWS_REGION, else us-east-1 for --s3-endpoint)")
}

// OneLine keeps a value that came from a callback on one line of terminal output and free of
// control sequences: C0/C1 controls (terminal escapes) and bidi overrides, which could disguise
// a name, become '?'.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			return '?'
		}
		return r
	}, s)
}

// Cell is OneLine for a table cell, with "-" for an empty value.
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	return OneLine(s)
}

// Range is a --from/--to day range as "FROM..TO", TO defaulting to FROM.
func Range(from, to string) string {
	if to == "" {
		to = from
	}
	return from + ".." + to
}

// UsageError returns the command's usage-error reporter: it prints "archiver NAME: message"
// and where to find the usage on stderr, and returns exit code 2.
func UsageError(fs *flag.FlagSet, stderr io.Writer) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, fs.Name()+": "+format+"\n", a...)
		fmt.Fprintf(stderr, "run %q for usage\n", fs.Name()+" -h")
		return 2
	}
}

// IsTerminal reports whether w is a character device (a terminal, as far as the standard library
// can tell without a dependency): progress lines go only there.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
