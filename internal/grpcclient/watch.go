package grpcclient

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/wire"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// Reconnect describes a watch about to open a new stream after its last
// one ended.
type Reconnect struct {
	Err     error         // why the last stream ended
	After   int64         // the revision the watch resumes after
	Listing bool          // the listing of current people resumes (send_current)
	Delay   time.Duration // how long the watch waits before the new stream
}

// ErrListingChanged is what a watch with send_current returns when its
// stream broke during the listing of current people and the directory has
// changed since: the rest of the listing cannot be had as of the revision
// its first part showed. Start the watch again.
var ErrListingChanged = errors.New("the watch broke while listing the current people, and the directory has changed since; watch again")

// Backoff between a watch's reconnections: from watchBackoffFirst, doubling,
// to watchBackoffMax, each ±20% so that the watchers of a replica that died
// do not all come back at once. A stream that delivered an event, or lived
// longer than watchBackoffMax, starts the backoff over.
const (
	watchBackoffFirst = 100 * time.Millisecond
	watchBackoffMax   = 3 * time.Second
)

// resumable reports whether a watch that ended with err may go on with a
// new stream: UNAVAILABLE is a replica that stopped, drained or lost its
// connection or its store; RESOURCE_EXHAUSTED is a server that ended a
// watch its client read too slowly, or had too many, and says to watch
// again (grpcserver's WatchPeople). Anything else (OUT_OF_RANGE for changes
// no longer kept, a refused token, a deadline) ends the watch.
func resumable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted:
		return true
	}
	return false
}

// WatchMessages runs the watch req on rg and calls each with every event,
// until ctx ends, each returns an error (that error), the server ends the
// watch (nil), or it fails in a way a new stream would not mend.
//
// Once a stream is in place (the server sent its headers), a stream that
// ends with UNAVAILABLE or RESOURCE_EXHAUSTED is followed by a new one,
// after a backoff, which resumes after the last revision delivered
// (after_revision), or after the revision the first stream followed from
// when no change came yet: each gets every change once, in order. When
// reconnecting is not nil it is called before each wait. A stream that
// fails before it is in place ends the watch: the retry policy of Dial has
// already tried it again where that could help.
//
// A stream that breaks while listing the current people (send_current,
// before SYNCED) is followed by a new listing, whose people already
// delivered are skipped when it lists the same revision; when the
// directory changed in between, the watch ends with ErrListingChanged.
//
// Errors are domain errors that wrap the call's status (see wire.FromStatus).
func WatchMessages(ctx context.Context, rg pb.RouteGuideClient, req *pb.WatchPeopleRequest, reconnecting func(Reconnect), each func(*pb.WatchPeopleResponse) error) error {
	w := &watch{
		rg:      rg,
		each:    each,
		listing: req.GetSendCurrent(),
		after:   req.GetAfterRevision(),
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     watchBackoffFirst,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         watchBackoffMax,
	}
	b.Reset()
	for {
		began := time.Now()
		err := w.stream(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		var stop stopWatch
		if errors.As(err, &stop) {
			return stop.err
		}
		if ctx.Err() != nil {
			// The stream may have broken on its own as ctx ended; the
			// caller asked for the end, so that is what it is told.
			return fromStatus(status.FromContextError(ctx.Err()).Err())
		}
		if !w.established || !resumable(err) {
			return err
		}
		if w.delivered || time.Since(began) > watchBackoffMax {
			b.Reset()
		}
		delay := b.NextBackOff()
		if reconnecting != nil {
			reconnecting(Reconnect{Err: err, After: w.after, Listing: w.listing, Delay: delay})
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fromStatus(status.FromContextError(ctx.Err()).Err())
		case <-t.C:
		}
	}
}

// stopWatch carries an error that ends a watch as it is: each's, or a
// listing that cannot resume.
type stopWatch struct{ err error }

func (s stopWatch) Error() string { return s.err.Error() }

// watch is where a watch has got to, across its streams.
type watch struct {
	rg   pb.RouteGuideClient
	each func(*pb.WatchPeopleResponse) error

	established bool  // a stream has been in place
	delivered   bool  // the last stream delivered an event
	listing     bool  // the current people are being listed: SYNCED not delivered
	after       int64 // the last revision delivered, or that the watch follows from
	listedRev   int64 // the revision of the listing
	listed      int   // CURRENT events delivered
	lastListed  string
}

// stream runs one stream of the watch, from where it has got to. It
// returns io.EOF when the server ended the watch, a stopWatch to end it
// as it is, or the stream's failure.
func (w *watch) stream(ctx context.Context) error {
	w.delivered = false
	req := &pb.WatchPeopleRequest{SendCurrent: w.listing}
	if !w.listing {
		req.AfterRevision = w.after
	}
	s, err := w.rg.WatchPeople(ctx, req)
	if err != nil {
		return fromStatus(err)
	}
	// Header returns no metadata and no error for a stream that ended
	// before it was in place; Recv returns how it ended.
	md, err := s.Header()
	if err != nil || md == nil {
		_, err = s.Recv()
		return fromStatus(err)
	}
	// A server that does not say where the watch follows from (not
	// RouteGuide's) leaves a watch "from now" that breaks before its first
	// change to resume from now again, and a listing not to resume.
	rev, revErr := strconv.ParseInt(firstOf(md.Get(wire.WatchRevisionHeader)), 10, 64)
	known := revErr == nil
	skip := 0
	switch {
	case w.listing && w.listed > 0:
		if !known || rev != w.listedRev {
			return stopWatch{ErrListingChanged}
		}
		skip = w.listed
	case w.listing:
		w.listedRev = rev
		if !known {
			w.listedRev = -1 // matches no revision
		}
	case req.AfterRevision == 0 && known:
		w.after = rev // "from now": now is this revision
	}
	w.established = true
	for {
		m, err := s.Recv()
		if err != nil {
			return fromStatus(err)
		}
		if m.GetType() == pb.WatchPeopleResponse_TYPE_CURRENT && skip > 0 {
			skip--
			if skip == 0 && m.GetPerson().GetName() != w.lastListed {
				return stopWatch{ErrListingChanged}
			}
			continue
		}
		if err := w.each(m); err != nil {
			return stopWatch{err}
		}
		w.delivered = true
		switch m.GetType() {
		case pb.WatchPeopleResponse_TYPE_CURRENT:
			w.listed++
			w.lastListed = m.GetPerson().GetName()
		case pb.WatchPeopleResponse_TYPE_SYNCED:
			w.listing = false
			w.after = m.GetRevision()
		default:
			w.after = m.GetRevision()
		}
	}
}

func firstOf(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Watch calls each with every event of a watch until ctx ends, the watch
// fails, or each returns an error, reconnecting as WatchMessages does
// (reconnecting, when not nil, is told before each new stream). With
// current, the current people come first; otherwise the changes after
// revision after (0: from now).
func (c *Client) Watch(ctx context.Context, current bool, after int64, reconnecting func(Reconnect), each func(Event) error) error {
	req := &pb.WatchPeopleRequest{SendCurrent: current, AfterRevision: after}
	return WatchMessages(ctx, c.rg, req, reconnecting, func(m *pb.WatchPeopleResponse) error {
		return each(eventOf(m))
	})
}
