package server

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConnections is how many client connections the server holds at
// once by default. Each costs a file descriptor and grpc-go's per-connection
// buffers; past the limit, new connections wait in the kernel's accept queue
// until one closes.
const DefaultMaxConnections = 10_000

// limitReachedEvery is how often, at most, reaching the connection limit is
// logged: a flood of connections must not flood the log.
const limitReachedEvery = time.Minute

// connLimit caps the connections open across a set of listeners. It is
// written here rather than taken from golang.org/x/net/netutil for two
// reasons: netutil.LimitListener limits each listener on its own, while a
// host name such as localhost listens on two addresses that must share one
// limit; and it cannot say when the limit is reached, which an operator
// needs to see. A slot is freed when its connection closes; see Accept.
type connLimit struct {
	sem chan struct{}
	log *slog.Logger
	// lastLog is when reaching the limit was last logged, in Unix nanoseconds.
	lastLog atomic.Int64
}

// limitListeners returns ls sharing one limit of max open connections.
func limitListeners(ls []net.Listener, max int, log *slog.Logger) []net.Listener {
	cl := &connLimit{sem: make(chan struct{}, max), log: log}
	out := make([]net.Listener, len(ls))
	for i, l := range ls {
		out[i] = &limitListener{Listener: l, limit: cl, done: make(chan struct{})}
	}
	return out
}

// reached logs, at most once per limitReachedEvery, that the limit holds
// new connections back.
func (cl *connLimit) reached(addr net.Addr) {
	now := time.Now().UnixNano()
	last := cl.lastLog.Load()
	if now-last < int64(limitReachedEvery) || !cl.lastLog.CompareAndSwap(last, now) {
		return
	}
	cl.log.Warn("connection limit reached; new connections wait until one closes (--max-connections)",
		"max_connections", cap(cl.sem), "addr", addr.String())
}

type limitListener struct {
	net.Listener
	limit     *connLimit
	done      chan struct{} // closed by Close, to end a wait for a slot
	closeOnce sync.Once
}

// acquire takes a slot, waiting for one, and reports whether it got one
// before the listener was closed.
func (l *limitListener) acquire() bool {
	select {
	case <-l.done:
		return false
	case l.limit.sem <- struct{}{}:
		return true
	default:
	}
	l.limit.reached(l.Addr())
	select {
	case <-l.done:
		return false
	case l.limit.sem <- struct{}{}:
		return true
	}
}

func (l *limitListener) release() { <-l.limit.sem }

// Accept waits for a connection, then for a free slot. Accepting first
// keeps a listener that gets no connections from holding a slot that
// another listener's waiting client needs: the limit is shared by several
// listeners (localhost's two addresses, the gRPC and the HTTP listener).
// A client past the limit sees what the kernel's accept queue would show
// it, a connection not yet answered; the server holds at most one such
// connection per listener beyond the limit.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	return &limitConn{Conn: c, release: l.release}, nil
}

// Close closes the listener and ends a wait for a slot.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn frees its slot when closed, once.
type limitConn struct {
	net.Conn
	releaseOnce sync.Once
	release     func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}
