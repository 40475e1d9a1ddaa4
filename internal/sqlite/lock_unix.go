//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockSuffix names the file, beside the database, that one process holds
// locked while it serves the database.
const lockSuffix = "-lock"

// lock takes an exclusive flock on path's lock file and writes this
// process's ID into it, so that a second process can name the holder. The
// kernel releases the lock when the file is closed or the process ends in
// any way, kill -9 included, so a stale lock file never blocks a start. A
// flock belongs to the open file, so a second Open in the same process is
// refused too. It fails, naming path and, when the lock file says, the
// holder's process ID, when another process holds the lock.
func lock(path string) (*os.File, error) {
	name := path + lockSuffix
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		holder := "another process"
		if b, err := io.ReadAll(io.LimitReader(f, 32)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("%s is in use by %s (it holds %s); one database file is served by one process", path, holder, name)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// unlock releases a lock taken by lock.
func unlock(f *os.File) {
	if f != nil {
		f.Close() // closing releases the flock
	}
}
