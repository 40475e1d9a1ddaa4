//go:build !unix

package server

// raiseFileLimit does nothing where there is no RLIMIT_NOFILE, and returns 0:
// the limit is unknown.
func raiseFileLimit() (uint64, error) { return 0, nil }
