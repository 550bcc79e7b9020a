// Package readme holds no code: its tests run README.md's runnable blocks against a real archive
// the archiver writes. It lives in the tests/ module so that the provider's module does not carry
// DuckDB (cgo, native libraries) for its users.
//
// The convention, for whoever edits the README:
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
//   - every ```hcl block must be as `terraform fmt` writes it, unless skipped;
//   - any other `<!-- check: ... -->` comment fails the test.
//
// Generated reference sections (flag tables) are checked by archiver/internal/readmegen instead.
//
// Run: make test, or cd tests && go test ./readme/ (DuckDB needs CGO_ENABLED=1).
package readme
