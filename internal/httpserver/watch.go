package httpserver

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// watchHandler serves GET /v1/people:watch, the watch feed as Server-Sent
// Events. It calls WatchPeople through next, as a Connect client would, so
// the watch passes the same auth, roles and watch limits as a gRPC one, and
// ends when the server drains; then it writes each answer as an event:
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
// An error before the feed starts (a bad Last-Event-ID, a missing token, a
// watch limit) is answered as the REST routes answer errors; one after, as
// an error event, after which the feed ends.
type watchHandler struct {
	next      http.Handler
	keepalive time.Duration
}

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
	// One Connect streaming request: an envelope of flags (0) and length,
	// then the message.
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)

	call := r.Clone(r.Context()) // the peer, TLS state and context stay
	call.Method = http.MethodPost
	call.URL = &url.URL{Path: pb.RouteGuide_WatchPeople_FullMethodName}
	call.RequestURI = ""
	call.Header = http.Header{
		"Content-Type":             {"application/connect+proto"},
		"Connect-Protocol-Version": {"1"},
	}
	for _, k := range []string{"Authorization", "Traceparent", "Tracestate", "User-Agent"} {
		if v := r.Header.Values(k); len(v) > 0 {
			call.Header[k] = v
		}
	}
	call.Body = io.NopCloser(bytes.NewReader(body))
	call.ContentLength = int64(len(body))
	call.GetBody = nil

	sw := &sseWriter{w: w, rc: http.NewResponseController(w), header: http.Header{}, current: req.SendCurrent}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sw.keepAlive(h.keepalive, done) })
	h.next.ServeHTTP(sw, call)
	sw.finish()
	close(done)
	wg.Wait() // no write once the handler has returned
}

// sseWriter receives the Connect answer of a WatchPeople call and writes
// it to w as events. Its methods may be called from the call's goroutines
// and the keepalive's.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	header  http.Header // the Connect answer's headers, read at commit
	current bool        // ?current=true: no starting id

	mu        sync.Mutex
	status    int    // the Connect answer's HTTP status; guarded by mu
	committed bool   // the event stream's headers are sent; guarded by mu
	ended     bool   // the end of the stream was read; guarded by mu
	pending   []byte // bytes of an envelope not whole yet; guarded by mu
	failed    bool   // a write to w failed; guarded by mu
}

func (sw *sseWriter) Header() http.Header { return sw.header }

func (sw *sseWriter) WriteHeader(code int) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.status == 0 {
		sw.status = code
	}
}

// Write takes the Connect answer's body: envelopes of a flags byte, a
// length and a message, the last one (flag 2) the end of the stream.
func (sw *sseWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	sw.pending = append(sw.pending, p...)
	if sw.status != http.StatusOK {
		return len(p), nil // a protocol error's body, answered by finish
	}
	for len(sw.pending) >= 5 && !sw.ended {
		flags, n := sw.pending[0], binary.BigEndian.Uint32(sw.pending[1:5])
		if uint32(len(sw.pending)-5) < n {
			break
		}
		msg := sw.pending[5 : 5+n]
		if flags&2 != 0 {
			sw.ended = true
			sw.end(msg)
		} else if err := sw.event(msg); err != nil {
			return 0, err
		}
		sw.pending = sw.pending[5+n:]
	}
	if sw.failed {
		return 0, io.ErrClosedPipe
	}
	return len(p), nil
}

// Flush starts the event stream once the call's headers have come: the
// watch is in place.
func (sw *sseWriter) Flush() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.status == http.StatusOK && !sw.ended {
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
	if rev := sw.header.Get("Routeguide-Watch-Revision"); rev != "" && !sw.current {
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

// endStream is the Connect end-of-stream message.
type endStream struct {
	Error *struct {
		Code    connect.Code `json:"code"`
		Message string       `json:"message"`
		Details []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"details"`
	} `json:"error"`
}

// end handles the end of the stream: an error, answered as a status before
// the feed starts and as an event after. sw.mu is held.
func (sw *sseWriter) end(msg []byte) {
	var es endStream
	if err := json.Unmarshal(msg, &es); err != nil {
		es.Error = nil
		sw.fail(status.New(codes.Internal, "internal error"))
		return
	}
	if es.Error == nil {
		return
	}
	sp := &spb.Status{Code: int32(es.Error.Code), Message: es.Error.Message}
	for _, d := range es.Error.Details {
		v, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(d.Value, "="))
		if err != nil {
			continue
		}
		sp.Details = append(sp.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type, Value: v})
	}
	sw.fail(status.FromProto(sp))
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

// finish answers what the call left unanswered: a protocol error from the
// transcoder, or a stream that ended without its end message.
func (sw *sseWriter) finish() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	switch {
	case sw.ended:
	case sw.status != http.StatusOK && sw.status != 0:
		sw.fail(status.Newf(codes.Internal, "watch feed: the call answered HTTP %d", sw.status))
	default:
		sw.fail(status.New(codes.Unavailable, "the watch ended; watch again with Last-Event-ID"))
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
	if _, err := io.WriteString(sw.w, s); err != nil {
		sw.failed = true
	}
}

func (sw *sseWriter) flush() {
	if !sw.failed && sw.rc.Flush() != nil {
		sw.failed = true
	}
}
