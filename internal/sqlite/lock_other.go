//go:build !unix

package sqlite

import "os"

// lock does nothing where flock is missing: there, keeping one process per
// database file is the operator's task.
func lock(string) (*os.File, error) { return nil, nil }

// unlock does nothing, as lock took nothing.
func unlock(*os.File) {}
