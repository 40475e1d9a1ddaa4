package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// personCost is what one person read from the store can hold at most, in
// bytes: its text at its longest, plus the headers of its strings and
// hobbies, and the tags of its wire form.
const personCost = people.MaxPersonBytes + 1<<10

// watchPageLen returns how many people or changes a watch reads from the
// store at a time so that a page holds at most pageBytes, even of people at
// their longest: between 1 and watchBatch.
func watchPageLen(pageBytes int) int {
	return min(max(pageBytes/personCost, 1), watchBatch)
}

// watchers counts the open watches, to refuse one past its connection's or
// the server's limit.
type watchers struct {
	perConn, total int

	mu     sync.Mutex
	open   int              // guarded by mu
	byConn map[net.Addr]int // open watches per connection; guarded by mu
}

func newWatchers(perConn, total int) *watchers {
	return &watchers{perConn: perConn, total: total, byConn: make(map[net.Addr]int)}
}

// enter counts a new watch on the connection ctx belongs to, and returns
// the function that uncounts it; or a RESOURCE_EXHAUSTED status error,
// naming the limit, when the watch would be one too many.
//
// grpc-go gives every stream of a connection the same peer address, the
// value the net package made for the connection when it was accepted, and a
// pointer for TCP and Unix sockets, so it tells connections apart while
// they are open; a stats handler would too, but would cost every call.
// Connections whose addresses compare equal share one count, which errs on
// the side of refusing.
func (w *watchers) enter(ctx context.Context) (leave func(), err error) {
	var conn net.Addr
	if p, ok := peer.FromContext(ctx); ok {
		conn = p.Addr
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open >= w.total {
		return nil, status.Errorf(codes.ResourceExhausted, "the server has %d watches open, its limit; watch again later, or from another replica", w.total)
	}
	if w.byConn[conn] >= w.perConn {
		return nil, status.Errorf(codes.ResourceExhausted, "this connection has %d watches open, the limit per connection; close one or watch on another connection", w.perConn)
	}
	w.open++
	w.byConn[conn]++
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.open--
		if w.byConn[conn]--; w.byConn[conn] == 0 {
			delete(w.byConn, conn)
		}
	}, nil
}

// errStalled is the cause a watch's context ends with when its client has
// accepted nothing for the stall timeout.
var errStalled = errors.New("the client accepted no data")

// stalledStatus is what a client that stopped reading its watch is told.
func stalledStatus(timeout time.Duration) error {
	return status.Errorf(codes.ResourceExhausted,
		"watch ended: the client accepted no data for %v; watch again with after_revision set to the last revision received after SYNCED (or with send_current, if SYNCED was not received)", timeout)
}

// watchSender sends a watch's events, ending the watch's context with
// errStalled when one send has waited for the client for longer than the
// stall timeout. grpc-go's Send waits while HTTP/2 flow control is
// exhausted, and nothing but the end of the stream interrupts it, so the
// watch sends from a goroutine of its own while its handler waits for the
// watch to end or stall (see WatchPeople).
type watchSender struct {
	stream grpc.ServerStreamingServer[pb.WatchPeopleResponse]
	ctx    context.Context
	timer  *time.Timer // armed only while a send waits
	stall  time.Duration
}

func newWatchSender(ctx context.Context, stall time.Duration, cancel context.CancelCauseFunc, stream grpc.ServerStreamingServer[pb.WatchPeopleResponse]) *watchSender {
	w := &watchSender{stream: stream, ctx: ctx, stall: stall}
	w.timer = time.AfterFunc(stall, func() { cancel(errStalled) })
	w.timer.Stop()
	return w
}

// send sends ev, or returns the context's error once the watch is over.
func (w *watchSender) send(ev *pb.WatchPeopleResponse) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.timer.Reset(w.stall)
	err := w.stream.Send(ev)
	w.timer.Stop()
	return err
}

// panicked carries a panic out of a watch's goroutine, to be raised again
// in its handler, whose interceptor reports it.
type panicked struct{ value any }

func (p panicked) Error() string { return fmt.Sprint("panic: ", p.value) }
