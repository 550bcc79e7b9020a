// Package tools pins the documentation generator and runs it: `make docs`.
package tools

// tfplugindocs is declared with `go get -tool`, so it comes from the module proxy at the pinned version.
//go:generate go tool tfplugindocs generate --provider-dir .. --provider-name livehook
