package cli

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The server logs a line for every write (its audit line), and a write of
// its own to stderr for each line cost a system call per write, made
// holding the handler's lock: some 8% of the server's CPU under
// bench/scale's write load. So serve's log goes through a logBuffer, which
// writes at most once every logFlushEvery and otherwise holds the lines,
// in order, until then.
//
// A line is written at once when nothing was written for logFlushEvery,
// so a quiet server's lines (its start, a failure) appear as they are
// logged; so is a line at warn level or above, with the lines before it
// (flushingHandler). Close writes what is held, and serve closes the
// buffer when the server has stopped, so every line reaches stderr on
// every exit of the command. A crash (SIGKILL, a second signal, the
// runtime's fatal errors) loses the info and debug lines of its last
// logFlushEvery. That is acceptable: they are the audit and call lines of
// writes that had just been made, and each committed change keeps its
// origin (principal, peer, request id) in the change log, where
// `routeguide history` and watchers read it; what the log alone holds, the
// audit lines of refused writes, loses only those few milliseconds.
const (
	logFlushEvery = 10 * time.Millisecond
	// logBufferBytes bounds the lines held: more are written at once.
	logBufferBytes = 64 << 10
)

// logBuffer is an io.Writer that holds what is written for up to delay
// after its last write to w, and at most max bytes of it, then writes it
// to w in one call. It is safe for concurrent use; writes reach w in the
// order they were made.
type logBuffer struct {
	w     io.Writer
	delay time.Duration
	max   int

	mu     sync.Mutex // guards the fields below, and is held while writing to w
	buf    []byte     // held, not yet written to w
	last   time.Time  // when buf was last written to w
	timer  *time.Timer
	armed  bool  // timer will write buf
	closed bool  // Close was called: writes go straight to w
	err    error // the last error of a write the timer made, for Close
}

func newLogBuffer(w io.Writer, delay time.Duration, max int) *logBuffer {
	return &logBuffer{w: w, delay: delay, max: max}
}

// Write holds p, or writes it with what is held when the last write to w
// was delay ago or more. It returns an error only from a write to w it
// made itself.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(p) > b.max {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		b.last = time.Now()
		return b.w.Write(p)
	}
	var err error
	if len(b.buf)+len(p) > b.max {
		err = b.flushLocked()
	}
	b.buf = append(b.buf, p...)
	if b.armed {
		return len(p), err
	}
	if wait := b.delay - time.Since(b.last); wait > 0 {
		b.armed = true
		if b.timer == nil {
			b.timer = time.AfterFunc(wait, b.timed)
		} else {
			b.timer.Reset(wait)
		}
		return len(p), err
	}
	if ferr := b.flushLocked(); ferr != nil {
		err = ferr
	}
	return len(p), err
}

// timed writes what is held when the timer fires.
func (b *logBuffer) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	if err := b.flushLocked(); err != nil {
		b.err = err
	}
}

// Flush writes what is held to w now.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *logBuffer) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	b.last = time.Now()
	return err
}

// Close writes what is held; later writes go straight to w. It returns
// the error of that write, or else of the last write the timer made.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
		b.armed = false
	}
	if err := b.flushLocked(); err != nil {
		return err
	}
	return b.err
}

// flushingHandler writes out its logBuffer after each record at warn level
// or above, so that a warning or an error, and the lines before it, are
// not held.
type flushingHandler struct {
	slog.Handler
	buf *logBuffer
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.buf.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.buf}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.buf}
}
