package httpserver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// watchHandler serves GET /v1/people:watch, the watch feed as Server-Sent
// Events. It calls WatchPeople on the gRPC server as a gRPC client would,
// through ServeHTTP, so the watch passes the same auth, roles and watch
// limits as one on the native listener, and ends when the server drains;
// then it writes each answer as an event:
//
//	id: <revision>
//	event: added | updated | deleted | current | synced
//	data: <WatchPeopleResponse as protojson, one line>
//
// A client resumes with Last-Event-ID, the last revision it saw
// (after_revision). A revision older than the change log keeps is answered
// with a reset event. `current` events carry no id: a feed cut before its
// synced event cannot be resumed, only started again. A feed without
// ?current=true starts with an id alone, the revision it watches after, so
// that a client cut off before any change resumes without a gap.
//
// An error before the watch is in place (a bad Last-Event-ID, a missing
// token, a watch limit) is answered as the REST routes answer errors; one
// after, as an error event, after which the feed ends. The watch is in
// place when WatchPeople sends its header, which names the revision it
// watches after (grpcserver's watch revision header).
//
// The call goes to the gRPC server directly, not through vanguard, whose
// Connect answer holds the headers back until the first message: a feed
// without changes would not start.
//
// A client that stops reading holds a write to it; each write may take at
// most stall (the watch's stall timeout, Limits.WatchStallTimeout), after
// which the feed ends and its connection's writes fail, so an abandoned
// feed holds its goroutine and buffers no longer than a gRPC watch would.
type watchHandler struct {
	svc       http.Handler
	keepalive time.Duration
	stall     time.Duration
}

// watchRevisionHeader is the header WatchPeople sends once the watch is in
// place.
const watchRevisionHeader = "Routeguide-Watch-Revision"

func (h *watchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req pb.WatchPeopleRequest
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		after, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || after < 0 {
			writeStatus(w, status.Newf(codes.InvalidArgument, "Last-Event-ID %q: want a revision, a number the feed sent as an id", v))
			return
		}
		req.AfterRevision = after
	}
	if v := r.URL.Query().Get("current"); v != "" {
		current, err := strconv.ParseBool(v)
		if err != nil {
			writeStatus(w, status.Newf(codes.InvalidArgument, "current=%q: want true or false", v))
			return
		}
		req.SendCurrent = current
	}
	msg, err := proto.Marshal(&req)
	if err != nil {
		writeStatus(w, status.New(codes.Internal, "internal error"))
		return
	}
	// One gRPC request message: a flags byte (0), its length, the message.
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)

	call := r.Clone(r.Context()) // the peer, TLS state and context stay
	call.Method = http.MethodPost
	call.URL = &url.URL{Path: pb.RouteGuide_WatchPeople_FullMethodName}
	call.RequestURI = ""
	call.ProtoMajor, call.ProtoMinor, call.Proto = 2, 0, "HTTP/2.0"
	call.Header = http.Header{
		"Content-Type": {"application/grpc+proto"},
		"Te":           {"trailers"},
	}
	for _, k := range []string{"Authorization", "Traceparent", "Tracestate", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			call.Header[k] = v
		}
	}
	call.Body = io.NopCloser(bytes.NewReader(body))
	call.ContentLength = int64(len(body))
	call.GetBody = nil

	sw := &sseWriter{w: w, rc: http.NewResponseController(w), header: http.Header{}, current: req.SendCurrent, stall: h.stall}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sw.keepAlive(h.keepalive, done) })
	h.svc.ServeHTTP(sw, call)
	sw.finish()
	close(done)
	wg.Wait() // no write once the handler has returned
}

// sseWriter receives the gRPC answer of a WatchPeople call and writes it
// to w as events. Its methods may be called from the call's goroutines and
// the keepalive's.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	header  http.Header   // the gRPC answer's headers and trailers
	current bool          // ?current=true: no starting id
	stall   time.Duration // the longest a write to w may take

	mu        sync.Mutex
	committed bool   // the event stream's headers are sent; guarded by mu
	ended     bool   // the call has returned; guarded by mu
	pending   []byte // bytes of a message not whole yet; guarded by mu
	failed    bool   // a write to w failed; guarded by mu
}

func (sw *sseWriter) Header() http.Header { return sw.header }

func (sw *sseWriter) WriteHeader(int) {}

// Write takes the gRPC answer's body: messages, each after a flags byte
// and its length.
func (sw *sseWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	sw.pending = append(sw.pending, p...)
	for len(sw.pending) >= 5 {
		n := binary.BigEndian.Uint32(sw.pending[1:5])
		if uint32(len(sw.pending)-5) < n {
			break
		}
		if err := sw.event(sw.pending[5 : 5+n]); err != nil {
			return 0, err
		}
		sw.pending = sw.pending[5+n:]
	}
	if sw.failed {
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

// Flush starts the event stream once the watch is in place.
func (sw *sseWriter) Flush() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.header.Get(watchRevisionHeader) != "" {
		sw.commit()
		sw.flush()
	}
}

// commit sends the event stream's headers, and the revision the watch
// starts after unless it sends everyone first. sw.mu is held.
func (sw *sseWriter) commit() {
	if sw.committed {
		return
	}
	sw.committed = true
	h := sw.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold events back
	sw.w.WriteHeader(http.StatusOK)
	if rev := sw.header.Get(watchRevisionHeader); rev != "" && !sw.current {
		sw.write("id: " + rev + "\n\n")
	}
}

var eventNames = map[pb.WatchPeopleResponse_Type]string{
	pb.WatchPeopleResponse_TYPE_CURRENT: "current",
	pb.WatchPeopleResponse_TYPE_SYNCED:  "synced",
	pb.WatchPeopleResponse_TYPE_ADDED:   "added",
	pb.WatchPeopleResponse_TYPE_UPDATED: "updated",
	pb.WatchPeopleResponse_TYPE_DELETED: "deleted",
}

// event writes one answer as an event. sw.mu is held.
func (sw *sseWriter) event(msg []byte) error {
	var ev pb.WatchPeopleResponse
	if err := proto.Unmarshal(msg, &ev); err != nil {
		return fmt.Errorf("watch feed: %w", err)
	}
	data, err := protojson.Marshal(&ev)
	if err != nil {
		return fmt.Errorf("watch feed: %w", err)
	}
	sw.commit()
	var b strings.Builder
	if ev.GetType() != pb.WatchPeopleResponse_TYPE_CURRENT {
		fmt.Fprintf(&b, "id: %d\n", ev.GetRevision())
	}
	name := eventNames[ev.GetType()]
	if name == "" {
		name = "message"
	}
	fmt.Fprintf(&b, "event: %s\ndata: %s\n\n", name, data)
	sw.write(b.String())
	sw.flush()
	return nil
}

// callStatus returns the status the call ended with, from its trailers.
func (sw *sseWriter) callStatus() *status.Status {
	if bin := sw.header.Get("Grpc-Status-Details-Bin"); bin != "" {
		if b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(bin, "=")); err == nil {
			var sp spb.Status
			if proto.Unmarshal(b, &sp) == nil {
				return status.FromProto(&sp)
			}
		}
	}
	code, err := strconv.Atoi(sw.header.Get("Grpc-Status"))
	if err != nil {
		return status.New(codes.Unavailable, "the watch ended; watch again with Last-Event-ID")
	}
	msg := sw.header.Get("Grpc-Message")
	if m, err := url.PathUnescape(msg); err == nil {
		msg = m
	}
	return status.New(codes.Code(code), msg)
}

// fail answers st: before the feed starts, as the REST routes would,
// except that a revision past retention (OUT_OF_RANGE) is a reset event
// whatever the moment. sw.mu is held.
func (sw *sseWriter) fail(st *status.Status) {
	if !sw.committed && st.Code() != codes.OutOfRange {
		sw.committed = true
		writeStatus(sw.w, st)
		return
	}
	data, err := statusJSON(st)
	if err != nil {
		data = []byte(`{"code":13,"message":"internal error"}`)
	}
	name := "error"
	if st.Code() == codes.OutOfRange {
		name = "reset"
	}
	sw.commit()
	sw.write("event: " + name + "\ndata: " + string(data) + "\n\n")
	sw.flush()
}

// finish answers how the call ended: a watch ends only with an error.
func (sw *sseWriter) finish() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if st := sw.callStatus(); st.Code() != codes.OK {
		sw.fail(st)
	}
	sw.ended = true
}

// keepAlive writes a comment every interval while the feed is quiet, until
// done is closed.
func (sw *sseWriter) keepAlive(interval time.Duration, done <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		sw.mu.Lock()
		if sw.committed && !sw.ended {
			sw.write(": ping\n\n")
			sw.flush()
		}
		sw.mu.Unlock()
	}
}

// write writes s to the client; a failure is remembered, and the client's
// request context ends with its connection. sw.mu is held.
func (sw *sseWriter) write(s string) {
	if sw.failed {
		return
	}
	// Not every ResponseWriter has deadlines (a test's may not); the
	// server's do.
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.stall))
	if _, err := io.WriteString(sw.w, s); err != nil {
		sw.failed = true
	}
}

func (sw *sseWriter) flush() {
	if !sw.failed && sw.rc.Flush() != nil {
		sw.failed = true
	}
}
