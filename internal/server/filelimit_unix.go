//go:build unix

package server

import "syscall"

// raiseFileLimit raises the process's soft limit on open files to its hard
// limit, since every connection holds a descriptor, and returns the soft
// limit in force (0 when it cannot be read). Go's os package already
// raises it at start on most systems; doing it here as well keeps the
// server's capacity from depending on that, and reports the number.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), err
		}
		lim = raised
	}
	return uint64(lim.Cur), nil
}
