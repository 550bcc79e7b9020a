// Package readme holds no code: its tests run the runnable blocks of README.md and of every
// rendered guide (docs/guides/*.md, from templates/guides/*.md.tmpl by make docs) against a real
// archive the archiver writes, and check that their relative links resolve. It lives in the
// tests/ module so that the provider's module does not carry DuckDB (cgo, native libraries) for
// its users.
//
// The convention, for whoever edits the README or a guide:
//   - every ```sql block runs in DuckDB against the archive and must return at least one row,
//     unless an HTML comment `<!-- check: skip REASON -->` precedes it (for example Athena DDL);
//   - a ```sh block preceded by `<!-- check: run -->` runs line by line with bash (pipefail) in
//     the archive's directory, the archiver binary first on PATH; each line must exit 0 and print
//     something. Store URLs (s3://... and file://...) point at the test archive and dates at its
//     day, so the README can show realistic values;
//   - a ```sh block preceded by `<!-- check: make -->` holds make commands: each target must
//     exist (make -n);
//   - a ```sh block preceded by `<!-- check: serve -->` holds servers: each starts from the
//     repository root (its --listen moved to a free port) and must print "listening on";
//   - every ```hcl or ```terraform block must be as `terraform fmt` writes it, unless skipped;
//   - every relative link or image must name a file or directory of the repository, and a
//     #fragment a heading of its markdown target (GitHub's anchor names);
//   - any other `<!-- check: ... -->` comment fails the test.
//
// The guides are checked as rendered, since that is what readers see; edit their templates and
// run make docs. Generated reference sections (flag tables) are checked by
// archiver/internal/readmegen instead.
//
// Run: make test, or cd tests && go test ./readme/ (DuckDB needs CGO_ENABLED=1).
package readme
