// Package codeshape holds the repository's shape rules as a test, so that
// go test ./... keeps them: no Go file over 600 lines, no function outside
// tests over 80 lines, and a package comment on every package. It has no
// code of its own.
package codeshape
