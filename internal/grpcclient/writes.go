package grpcclient

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every write carries a fresh request id (AIP-155), recorded by the server
// with the write's outcome, so a write whose answer was lost can be sent
// again: the repeat answers what the first answered and changes nothing.
// The client does so itself (retryWrite); the service config's retry
// policy covers writes too (see serviceConfig).

// WriteOption changes one write.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ifMatch   string
	requestID string
}

// IfMatch makes an update or a delete conditional on the person's etag
// still being etag: when it is not, the write fails with an error of kind
// people.Aborted and changes nothing. An empty etag changes nothing.
func IfMatch(etag string) WriteOption {
	return func(o *writeOptions) { o.ifMatch = etag }
}

// RequestID gives a write the request id id instead of a fresh one, to
// send again a write made before (by this process or another).
func RequestID(id string) WriteOption {
	return func(o *writeOptions) { o.requestID = id }
}

func newWriteOptions(opts []WriteOption) writeOptions {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	if o.requestID == "" {
		o.requestID = NewRequestID()
	}
	return o
}

// Write retries: attempts in all, the wait before the first retry, doubled
// for each next up to maxRetryWait, each spread by half of it either way
// at random so that clients cut off together do not retry together.
const (
	writeAttempts  = 5
	firstRetryWait = 100 * time.Millisecond
	maxRetryWait   = 2 * time.Second
)

// RetryWrite is retryWrite, for the public client: it calls call, and
// again with backoff while it fails with UNAVAILABLE or DEADLINE_EXCEEDED
// with ctx's time left; call must send the same request id each time.
func RetryWrite(ctx context.Context, call func(context.Context) error) error {
	return retryWrite(ctx, call)
}

// NewRequestID returns a fresh request id, a random UUID.
func NewRequestID() string { return uuid.NewString() }

// retryWrite calls call, and again with backoff while it fails with
// UNAVAILABLE (the connection was lost, or the server could not reach its
// store) or DEADLINE_EXCEEDED while ctx has time left (a deadline shorter
// than the caller's, set on the way), at most writeAttempts times in all.
// call must send the same request id each time, which makes the repeat
// safe. It returns call's last error, or ctx's cause when ctx ends before
// the next attempt.
func retryWrite(ctx context.Context, call func(context.Context) error) error {
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := call(ctx)
		if err != nil && !retryable(ctx, err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     firstRetryWait,
			RandomizationFactor: 0.5,
			Multiplier:          2,
			MaxInterval:         maxRetryWait,
		}),
		backoff.WithMaxTries(writeAttempts),
		backoff.WithMaxElapsedTime(0), // ctx bounds the whole
	)
	return err
}

// retryable reports whether a write that failed with err may be sent again.
func retryable(ctx context.Context, err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return ctx.Err() == nil
	}
	return false
}
