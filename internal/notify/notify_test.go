package notify

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLatest(t *testing.T) {
	var l Latest
	if err := l.Wait(context.Background(), -1); err != nil {
		t.Errorf("Wait(-1) at revision 0: %v", err)
	}
	woken := make(chan error, 3)
	for range 3 {
		go func() { woken <- l.Wait(context.Background(), 0) }()
	}
	l.Advance(0) // not newer: wakes nobody
	select {
	case err := <-woken:
		t.Fatalf("a waiter woke without an advance: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	l.Advance(1)
	for range 3 {
		if err := <-woken; err != nil {
			t.Errorf("Wait(0) after Advance(1): %v", err)
		}
	}
	l.Advance(1)
	if got := l.Get(); got != 1 {
		t.Errorf("Get = %d, want 1", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 5); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}
