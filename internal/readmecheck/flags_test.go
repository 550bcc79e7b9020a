package readmecheck_test

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// helpFlags runs `bin args... -h` and returns its flags with their defaults as Go's flag
// package prints them ("" when it prints none).
func helpFlags(t *testing.T, bin string, args ...string) (map[string]string, string) {
	t.Helper()
	out, stderr, err := runCmd(t, t.TempDir(), cleanEnv(), bin, append(args, "-h")...)
	help := out + stderr
	if err != nil && !strings.Contains(help, "\n  -") {
		t.Fatalf("%s %v -h: %v\n%s", bin, args, err, help)
	}
	flags := map[string]string{}
	name := ""
	for _, l := range strings.Split(help, "\n") {
		if m := helpFlagRE.FindStringSubmatch(l); m != nil {
			name = m[1]
			flags[name] = ""
			continue
		}
		if name != "" && strings.HasPrefix(l, "    \t") {
			if m := helpDefaultRE.FindStringSubmatch(l); m != nil {
				flags[name] = strings.Trim(m[1], `"`)
			}
		}
	}
	if len(flags) == 0 {
		t.Fatalf("%s %v -h printed no flags:\n%s", bin, args, help)
	}
	return flags, help
}

var (
	helpFlagRE    = regexp.MustCompile(`^  -([a-z0-9][a-z0-9-]*)`)
	helpDefaultRE = regexp.MustCompile(`\(default ([^()]*)\)\s*$`)
	dashFlagRE    = regexp.MustCompile(`(?:^|[^A-Za-z0-9-])--([a-z0-9][a-z0-9-]*)`)
)

// dashFlags lists the --flags named in a piece of README text, in order, once each.
func dashFlags(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range dashFlagRE.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// usageBlock returns the archiver synopsis (the plain block starting "archiver serve") split
// into the serve and the events part.
func usageBlock(t *testing.T) (serve, events string, line int) {
	t.Helper()
	for _, f := range readme.fences("") {
		if len(f.Lines) == 0 || !strings.HasPrefix(f.Lines[0], "archiver serve") {
			continue
		}
		text := strings.Join(f.Lines, "\n")
		i := strings.Index(text, "\narchiver events")
		if i < 0 {
			t.Fatalf("README.md:%d: the usage block has no `archiver events` synopsis", f.Line)
		}
		return text[:i], text[i:], f.Line
	}
	t.Fatal("README has no usage block (a ``` block starting with `archiver serve`)")
	return "", "", 0
}

// TestArchiverUsageBlock: the synopsis names exactly the flags of `archiver serve -h` and
// `archiver events -h`.
func TestArchiverUsageBlock(t *testing.T) {
	serve, events, line := usageBlock(t)
	for _, part := range []struct{ sub, text string }{{"serve", serve}, {"events", events}} {
		have, _ := helpFlags(t, bins.Archiver, part.sub)
		named := dashFlags(part.text)
		for _, f := range named {
			if _, ok := have[f]; !ok {
				t.Errorf("README.md:%d: the usage block names --%s, which `archiver %s -h` does not have", line, f, part.sub)
			}
		}
		for _, f := range slices.Sorted(maps.Keys(have)) {
			if !slices.Contains(named, f) {
				t.Errorf("README.md:%d: the `archiver %s` synopsis lacks --%s (it is in `archiver %s -h`)", line, part.sub, f, part.sub)
			}
		}
	}
}

// TestArchiverFlagsTable: the flags table documents every `archiver serve` flag, no other,
// and with the defaults the program really has.
func TestArchiverFlagsTable(t *testing.T) {
	have, _ := helpFlags(t, bins.Archiver, "serve")
	tb, err := readme.table("flag")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, row := range tb.Rows {
		line := tb.Lines[i]
		if len(row) < 3 {
			t.Errorf("README.md:%d: want | flag | default | meaning |", line)
			continue
		}
		names := dashFlags(row[0])
		if len(names) == 0 {
			t.Errorf("README.md:%d: no --flag in the first column", line)
		}
		defaults := codeIn(row[1])
		for j, f := range names {
			seen[f] = true
			def, ok := have[f]
			if !ok {
				t.Errorf("README.md:%d: the table documents --%s, which `archiver serve -h` does not have", line, f)
				continue
			}
			if def == "" {
				continue // no default the flag package knows (computed at run time, or empty)
			}
			if len(defaults) != len(names) {
				t.Errorf("README.md:%d: --%s defaults to %q, but the default column %q does not give one value per flag", line, f, def, row[1])
				continue
			}
			if !sameDefault(defaults[j], def) {
				t.Errorf("README.md:%d: the table says --%s defaults to %q; `archiver serve -h` says %q", line, f, defaults[j], def)
			}
		}
	}
	for _, f := range slices.Sorted(maps.Keys(have)) {
		if !seen[f] {
			t.Errorf("README.md:%d: the flags table lacks --%s (it is in `archiver serve -h`)", tb.Lines[0]-2, f)
		}
	}
}

// sameDefault compares a README default with the -h one: "5m" equals "5m0s".
func sameDefault(readme, help string) bool {
	if readme == help {
		return true
	}
	a, err1 := time.ParseDuration(readme)
	b, err2 := time.ParseDuration(help)
	return err1 == nil && err2 == nil && a == b
}

// TestEmulatorFlagsParagraph: the emulator's "Flags:" paragraph names exactly the flags of
// `live-emulator -h` and the environment variables it reads.
func TestEmulatorFlagsParagraph(t *testing.T) {
	have, help := helpFlags(t, bins.Emulator)
	para, line, err := readme.paragraph("The Live API emulator", "Flags:")
	if err != nil {
		t.Fatal(err)
	}
	named := dashFlags(para)
	for _, f := range named {
		if _, ok := have[f]; !ok {
			t.Errorf("README.md:%d: the paragraph names --%s, which `live-emulator -h` does not have", line, f)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(have)) {
		if !slices.Contains(named, f) {
			t.Errorf("README.md:%d: the emulator's Flags paragraph lacks --%s (it is in `live-emulator -h`)", line, f)
		}
	}
	for _, m := range regexp.MustCompile(`\(env ([A-Z_]+)`).FindAllStringSubmatch(help, -1) {
		if !strings.Contains(para, "`"+m[1]+"`") {
			t.Errorf("README.md:%d: the emulator reads $%s, but the Flags paragraph does not say so", line, m[1])
		}
	}
}

// TestEveryFlagExists: every --flag anywhere in the README belongs to the program its section
// is about (archiver serve/events/sessions, live-emulator), so a renamed flag is caught in prose too.
func TestEveryFlagExists(t *testing.T) {
	serve, _ := helpFlags(t, bins.Archiver, "serve")
	events, _ := helpFlags(t, bins.Archiver, "events")
	sess, _ := helpFlags(t, bins.Archiver, "sessions")
	emu, _ := helpFlags(t, bins.Emulator)
	bySection := map[string][]map[string]string{
		"The archiver":          {serve, events, sess},
		"The Live API emulator": {emu},
	}
	for i, l := range readme.Lines {
		for _, c := range readme.allCommands() {
			if c.Line == i+1 && allowListed(c) >= 0 {
				l = strings.ReplaceAll(l, c.Text, "") // flags of other tools
			}
		}
		sets, ok := bySection[readme.Section[i]]
		if !ok {
			sets = []map[string]string{serve, events, sess, emu}
		}
		for _, f := range dashFlags(l) {
			found := false
			for _, s := range sets {
				if _, ok := s[f]; ok {
					found = true
				}
			}
			if !found {
				t.Errorf("README.md:%d: --%s is not a flag of the program this section is about (section %q)", i+1, f, readme.Section[i])
			}
		}
	}
}
