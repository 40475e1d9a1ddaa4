package sqlite

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// The write-ahead log's frames reach the file in one write a transaction.
//
// SQLite's unix VFS writes each frame of the log with two pwrite calls, its
// 24-byte header and then its page. A group of AddPerson calls dirties
// some two hundred pages, so each commit made about four hundred system
// calls before its fsync: in a server CPU profile of 64 concurrent writers
// those writes were a fifth of the server's CPU (about 35 µs a write),
// more than any statement. A pwrite of 4 KiB costs about 3 µs here, one
// of 256 KiB about 48: the cost is the call, not the bytes. Gathered, the
// log's writes cost about 5 µs a write instead of 34 (same profile).
//
// walVFS is the unix VFS with one difference, on write-ahead log files
// only: writes that append to the log are gathered in a buffer and written
// with one pwrite when the transaction's commit frame is complete, when
// the buffer is full, and before anything else is done with the file
// (read, sync, size, truncate, file control, close, or a write elsewhere
// in it). SQLite syncs the log and publishes new frames in the WAL index
// only after the commit frame is written, so every frame is in the file
// before any connection can be told of it or read it, and a crash loses at
// most frames of a transaction that had not committed, as without it.
// Every other file, and every other operation, is the unix VFS's own.
//
// SQLite has no such setting, and the driver has no VFS of this kind, so
// this is the smallest hook that does it: the unix VFS's own functions
// are called for everything, through the same function-pointer tables
// SQLite uses.
const walVFSName = "routeguide-wal"

const (
	walFrameHeader = 24 // bytes before each page in the log
	// Appends gathered before a write is forced: the most the unix VFS
	// writes in one call (it masks a write's length with 0x1ffff).
	walBufferSize = 0x1ffff
	sqliteOpenWAL = 0x00080000
	sqliteIOErr   = 10 // SQLITE_IOERR
)

var walVFS struct {
	once sync.Once
	err  error

	unixOpen uintptr // the unix VFS's xOpen
	// ours maps a file's unix io_methods to the copy that gathers writes,
	// made once per distinct table (in practice one).
	mu    sync.Mutex
	ours  map[uintptr]uintptr
	files sync.Map // sqlite3_file pointer → *walFile

	// Counters for tests: appends gathered and writes made.
	gathered, written atomic.Int64
}

// walFile is one open write-ahead log and what it has gathered.
type walFile struct {
	unix   *sqlite3.Tsqlite3_io_methods // the file's own methods
	buf    uintptr                      // walBufferSize bytes, allocated at the first write
	off    int64                        // the file offset of buf's first byte
	n      int                          // bytes gathered
	commit bool                         // the last append was a commit frame's header
}

// registerWALVFS registers walVFS once per process.
func registerWALVFS() error {
	walVFS.once.Do(func() { walVFS.err = registerWALVFSOnce() })
	return walVFS.err
}

func registerWALVFSOnce() error {
	tls := libc.NewTLS()
	defer tls.Close()
	if rc := sqlite3.Xsqlite3_initialize(tls); rc != 0 {
		return fmt.Errorf("sqlite3_initialize: %d", rc)
	}
	base := sqlite3.Xsqlite3_vfs_find(tls, 0)
	if base == 0 {
		return fmt.Errorf("SQLite has no default VFS")
	}
	name, err := libc.CString(walVFSName)
	if err != nil {
		return err
	}
	// Registered for the life of the process, so never freed.
	p := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	if p == 0 {
		return fmt.Errorf("out of memory registering the %s VFS", walVFSName)
	}
	v := (*sqlite3.Tsqlite3_vfs)(ptr(p))
	*v = *(*sqlite3.Tsqlite3_vfs)(ptr(base))
	v.FpNext = 0
	v.FzName = name
	walVFS.unixOpen = v.FxOpen
	walVFS.ours = map[uintptr]uintptr{}
	v.FxOpen = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32
	}{walOpen}))
	if rc := sqlite3.Xsqlite3_vfs_register(tls, p, 0); rc != 0 {
		return fmt.Errorf("register the %s VFS: %d", walVFSName, rc)
	}
	return nil
}

// ptr is p as a pointer, for memory SQLite's C heap owns.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// bytesAt is the n bytes of C memory at p.
func bytesAt(p uintptr, n int) []byte { return unsafe.Slice((*byte)(ptr(p)), n) }

func walOpen(tls *libc.TLS, pVfs, zName, pFile uintptr, flags int32, pOutFlags uintptr) int32 {
	open := *(*func(*libc.TLS, uintptr, uintptr, uintptr, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{walVFS.unixOpen}))
	rc := open(tls, pVfs, zName, pFile, flags, pOutFlags)
	if rc != 0 || flags&sqliteOpenWAL == 0 {
		return rc
	}
	file := (*sqlite3.Tsqlite3_file)(ptr(pFile))
	if file.FpMethods == 0 {
		return rc
	}
	ours, err := walMethods(tls, file.FpMethods)
	if err != nil {
		return rc // a log written as the unix VFS writes it
	}
	walVFS.files.Store(pFile, &walFile{unix: (*sqlite3.Tsqlite3_io_methods)(ptr(file.FpMethods))})
	file.FpMethods = ours
	return rc
}

// walMethods is the copy of the io_methods table unix that gathers writes.
func walMethods(tls *libc.TLS, unix uintptr) (uintptr, error) {
	walVFS.mu.Lock()
	defer walVFS.mu.Unlock()
	if m, ok := walVFS.ours[unix]; ok {
		return m, nil
	}
	p := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	if p == 0 {
		return 0, fmt.Errorf("out of memory")
	}
	m := (*sqlite3.Tsqlite3_io_methods)(ptr(p))
	*m = *(*sqlite3.Tsqlite3_io_methods)(ptr(unix))
	m.FxClose = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr) int32
	}{walClose}))
	m.FxRead = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	}{walRead}))
	m.FxWrite = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, uintptr, int32, int64) int32
	}{walWrite}))
	m.FxTruncate = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, int64) int32
	}{walTruncate}))
	m.FxSync = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, int32) int32
	}{walSync}))
	m.FxFileSize = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, uintptr) int32
	}{walFileSize}))
	m.FxFileControl = *(*uintptr)(unsafe.Pointer(&struct {
		f func(*libc.TLS, uintptr, int32, uintptr) int32
	}{walFileControl}))
	walVFS.ours[unix] = p
	return p, nil
}

func walFileOf(pFile uintptr) *walFile {
	f, _ := walVFS.files.Load(pFile)
	return f.(*walFile)
}

// flush writes what f has gathered.
func (f *walFile) flush(tls *libc.TLS, pFile uintptr) int32 {
	f.commit = false
	if f.n == 0 {
		return 0
	}
	n := f.n
	f.n = 0
	walVFS.written.Add(1)
	return f.write(tls, pFile, f.buf, int32(n), f.off)
}

func (f *walFile) write(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxWrite})))(tls, pFile, zBuf, iAmt, iOfst)
}

func walWrite(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := walFileOf(pFile)
	n := int(iAmt)
	commitPage := f.commit
	if f.n > 0 && iOfst != f.off+int64(f.n) {
		// Not an append (the log's header when it starts again, a frame
		// rewritten in place): what was gathered goes first.
		if rc := f.flush(tls, pFile); rc != 0 {
			return rc
		}
	}
	if n > walBufferSize-f.n {
		if rc := f.flush(tls, pFile); rc != 0 {
			return rc
		}
		if n > walBufferSize {
			walVFS.written.Add(1)
			return f.write(tls, pFile, zBuf, iAmt, iOfst)
		}
	}
	if f.buf == 0 {
		if f.buf = libc.Xmalloc(tls, walBufferSize); f.buf == 0 {
			walVFS.written.Add(1)
			return f.write(tls, pFile, zBuf, iAmt, iOfst)
		}
	}
	if f.n == 0 {
		f.off = iOfst
	}
	src := bytesAt(zBuf, n)
	copy(bytesAt(f.buf+uintptr(f.n), n), src)
	f.n += n
	walVFS.gathered.Add(1)
	if commitPage {
		// The page of the transaction's commit frame: the transaction's
		// frames are all here, so they go to the file now, before SQLite
		// syncs the log or publishes them.
		return f.flush(tls, pFile)
	}
	// A frame header whose second word, the database size after commit,
	// is set marks the commit frame.
	f.commit = n == walFrameHeader && binary.BigEndian.Uint32(src[4:8]) != 0
	return 0
}

func walRead(tls *libc.TLS, pFile, zBuf uintptr, iAmt int32, iOfst int64) int32 {
	f := walFileOf(pFile)
	if rc := f.flush(tls, pFile); rc != 0 {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr, int32, int64) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxRead})))(tls, pFile, zBuf, iAmt, iOfst)
}

func walTruncate(tls *libc.TLS, pFile uintptr, size int64) int32 {
	f := walFileOf(pFile)
	if rc := f.flush(tls, pFile); rc != 0 {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int64) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxTruncate})))(tls, pFile, size)
}

func walSync(tls *libc.TLS, pFile uintptr, flags int32) int32 {
	f := walFileOf(pFile)
	if rc := f.flush(tls, pFile); rc != 0 {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxSync})))(tls, pFile, flags)
}

func walFileSize(tls *libc.TLS, pFile, pSize uintptr) int32 {
	f := walFileOf(pFile)
	if rc := f.flush(tls, pFile); rc != 0 {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxFileSize})))(tls, pFile, pSize)
}

func walFileControl(tls *libc.TLS, pFile uintptr, op int32, pArg uintptr) int32 {
	f := walFileOf(pFile)
	if rc := f.flush(tls, pFile); rc != 0 {
		return rc
	}
	return (*(*func(*libc.TLS, uintptr, int32, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxFileControl})))(tls, pFile, op, pArg)
}

func walClose(tls *libc.TLS, pFile uintptr) int32 {
	f := walFileOf(pFile)
	rc := f.flush(tls, pFile)
	if f.buf != 0 {
		libc.Xfree(tls, f.buf)
		f.buf = 0
	}
	walVFS.files.Delete(pFile)
	if rc2 := (*(*func(*libc.TLS, uintptr) int32)(unsafe.Pointer(&struct{ uintptr }{f.unix.FxClose})))(tls, pFile); rc == 0 {
		rc = rc2
	}
	return rc
}
