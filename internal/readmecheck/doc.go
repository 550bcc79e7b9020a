// Package readmecheck holds no code: its tests keep README.md honest. They extract every fenced
// code block and every inline command of the README and check each one against the real
// product (built binaries, the installed terraform, a real archive written by the archiver,
// DuckDB, jq), failing with the README line of whatever went stale. A README command that no
// check recognises fails the test too, so a new command cannot slip in unchecked.
//
// Run: go test ./internal/readmecheck/ (add -args -readme FILE to check another copy).
package readmecheck
