package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// op is a write in the fake engine's terms: it fails with its error.
type op = func() error

// fakeTx is a transaction that records what the committer asked of it and
// fails where the test says. Each applied write takes the next revision.
type fakeTx struct {
	ctx   context.Context // the group's, as begin got it
	calls []string
	rev   int64

	failSavepoint  int // fail the nth Savepoint (1-based); 0 never
	failRollbackTo error
	failCommit     error
	savepoints     int
}

func (f *fakeTx) Savepoint() error {
	f.savepoints++
	f.calls = append(f.calls, "savepoint")
	if f.savepoints == f.failSavepoint {
		return errors.New("savepoint failed")
	}
	return nil
}

func (f *fakeTx) Run(w *Write[op]) error {
	f.calls = append(f.calls, "run")
	return w.Fn()
}

func (f *fakeTx) Release() (int64, error) {
	f.calls = append(f.calls, "release")
	f.rev++
	return f.rev, nil
}

func (f *fakeTx) RollbackTo() error {
	f.calls = append(f.calls, "rollback-to")
	return f.failRollbackTo
}

func (f *fakeTx) Commit(rev int64) error {
	f.calls = append(f.calls, "commit")
	return f.failCommit
}

func (f *fakeTx) Rollback() { f.calls = append(f.calls, "rollback") }

// committer returns a committer, without its loop, whose groups run in tx.
func committer(tx *fakeTx, beginErr error) *Committer[op] {
	return &Committer[op]{begin: func(ctx context.Context) (Tx[op], error) {
		tx.ctx = ctx
		if beginErr != nil {
			return nil, beginErr
		}
		return tx, nil
	}}
}

// write returns a write of fn by a caller with ctx.
func write(ctx context.Context, fn op) *Write[op] {
	return &Write[op]{Ctx: ctx, Fn: fn, done: make(chan struct{})}
}

func ok() error { return nil }

var errWrite = errors.New("the write's own error")

type want struct {
	rev int64
	err error
}

func check(t *testing.T, group []*Write[op], wants []want) {
	t.Helper()
	for i, w := range group {
		if w.Rev != wants[i].rev || !errors.Is(w.Err, wants[i].err) || (wants[i].err == nil) != (w.Err == nil) {
			t.Errorf("write %d: got rev %d, err %v; want rev %d, err %v", i, w.Rev, w.Err, wants[i].rev, wants[i].err)
		}
	}
}

func TestCommit(t *testing.T) {
	errCommit := errors.New("commit failed")
	errRollbackTo := errors.New("rollback to failed")
	errBegin := errors.New("begin failed")
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	fail := func() error { return errWrite }
	tests := []struct {
		name     string
		tx       fakeTx
		beginErr error
		writes   []*Write[op]
		want     []want
		calls    string
	}{
		{
			name:   "every write applied",
			writes: []*Write[op]{write(bg, ok), write(bg, ok)},
			want:   []want{{1, nil}, {2, nil}},
			calls:  "savepoint run release savepoint run release commit rollback",
		},
		{
			name:   "a write failing fails alone",
			writes: []*Write[op]{write(bg, ok), write(bg, fail), write(bg, ok)},
			want:   []want{{1, nil}, {0, errWrite}, {2, nil}},
			calls:  "savepoint run release savepoint run rollback-to savepoint run release commit rollback",
		},
		{
			name:   "the commit failing fails every write",
			tx:     fakeTx{failCommit: errCommit},
			writes: []*Write[op]{write(bg, ok), write(bg, fail), write(bg, ok)},
			want:   []want{{0, errCommit}, {0, errWrite}, {0, errCommit}},
			calls:  "savepoint run release savepoint run rollback-to savepoint run release commit rollback",
		},
		{
			name:     "begin failing fails every write",
			beginErr: errBegin,
			writes:   []*Write[op]{write(bg, ok), write(bg, ok)},
			want:     []want{{0, errBegin}, {0, errBegin}},
			calls:    "",
		},
		{
			name:   "a lost savepoint fails the writes before and after",
			tx:     fakeTx{failSavepoint: 2},
			writes: []*Write[op]{write(bg, ok), write(bg, ok), write(bg, ok)},
			want:   []want{{0, errors.New("")}, {0, errors.New("")}, {0, errors.New("")}},
			calls:  "savepoint run release savepoint rollback",
		},
		{
			name:   "a failed undo keeps the write's own error and fails the rest",
			tx:     fakeTx{failRollbackTo: errRollbackTo},
			writes: []*Write[op]{write(bg, ok), write(bg, fail), write(bg, ok)},
			want:   []want{{0, errRollbackTo}, {0, errWrite}, {0, errRollbackTo}},
			calls:  "savepoint run release savepoint run rollback-to rollback",
		},
		{
			name:   "a caller that left before its group is skipped",
			writes: []*Write[op]{write(bg, ok), write(gone, ok), write(bg, ok)},
			want:   []want{{1, nil}, {0, context.Canceled}, {2, nil}},
			calls:  "savepoint run release savepoint run release commit rollback",
		},
		{
			name:   "no write applied, no commit",
			writes: []*Write[op]{write(gone, ok), write(bg, fail)},
			want:   []want{{0, context.Canceled}, {0, errWrite}},
			calls:  "savepoint run rollback-to rollback",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := tt.tx
			committer(&tx, tt.beginErr).commit(tt.writes)
			for i, w := range tt.want {
				if w.err != nil && w.err.Error() == "" {
					tt.want[i].err = tt.writes[i].Err // any error will do
					if tt.writes[i].Err == nil {
						t.Errorf("write %d: no error; want one", i)
					}
				}
			}
			check(t, tt.writes, tt.want)
			if got := strings.Join(tx.calls, " "); got != tt.calls {
				t.Errorf("calls:\n got %s\nwant %s", got, tt.calls)
			}
		})
	}
}

// batched is a write the fake batch takes: it applies ok ones and fails
// the rest with errWrite.
type batched struct{ ok bool }

// batchTx is fakeTx with RunBatch: it takes the writes whose Fn is in
// take, gives each the next revision or its error, and returns the rest.
type batchTx struct {
	fakeTx
	take     map[*Write[op]]batched
	failWith error        // RunBatch's error, when set
	badRest  []*Write[op] // returned as the rest, when set
}

func (b *batchTx) RunBatch(ws []*Write[op]) ([]*Write[op], error) {
	b.calls = append(b.calls, fmt.Sprintf("batch(%d)", len(ws)))
	if b.failWith != nil {
		return nil, b.failWith
	}
	if b.badRest != nil {
		return b.badRest, nil
	}
	var rest []*Write[op]
	for _, w := range ws {
		t, ok := b.take[w]
		switch {
		case !ok:
			rest = append(rest, w)
		case t.ok:
			b.rev++
			w.Rev = b.rev
		default:
			w.Err = errWrite
		}
	}
	return rest, nil
}

// TestCommitBatch checks a group on a BatchTx: the writes it takes are
// applied or fail with it, the rest run one by one after them, and the
// group's transaction decides for all.
func TestCommitBatch(t *testing.T) {
	bg := context.Background()
	gone, cancel := context.WithCancel(bg)
	cancel()
	errBatch := errors.New("batch failed")
	errCommit := errors.New("commit failed")
	tests := []struct {
		name  string
		setup func(b *batchTx, ws []*Write[op])
		ctxs  []context.Context
		want  []want
		calls string
	}{
		{
			name: "taken writes first, the rest one by one",
			setup: func(b *batchTx, ws []*Write[op]) {
				b.take = map[*Write[op]]batched{ws[0]: {true}, ws[1]: {false}, ws[3]: {true}}
			},
			want:  []want{{1, nil}, {0, errWrite}, {3, nil}, {2, nil}},
			calls: "batch(4) savepoint run release commit rollback",
		},
		{
			name: "a caller gone before the group is not handed to the batch",
			setup: func(b *batchTx, ws []*Write[op]) {
				b.take = map[*Write[op]]batched{ws[0]: {true}, ws[1]: {true}, ws[2]: {true}, ws[3]: {true}}
			},
			ctxs:  []context.Context{bg, gone, bg, bg},
			want:  []want{{1, nil}, {0, context.Canceled}, {2, nil}, {3, nil}},
			calls: "batch(3) commit rollback",
		},
		{
			name:  "the batch failing loses the group",
			setup: func(b *batchTx, ws []*Write[op]) { b.failWith = errBatch },
			want:  []want{{0, errBatch}, {0, errBatch}, {0, errBatch}, {0, errBatch}},
			calls: "batch(4) rollback",
		},
		{
			name: "the commit failing fails the batch's writes too",
			setup: func(b *batchTx, ws []*Write[op]) {
				b.take = map[*Write[op]]batched{ws[0]: {true}, ws[1]: {true}}
				b.failCommit = errCommit
			},
			want:  []want{{0, errCommit}, {0, errCommit}, {0, errCommit}, {0, errCommit}},
			calls: "batch(4) savepoint run release savepoint run release commit rollback",
		},
		{
			name:  "a rest out of order is a bug, never acknowledged",
			setup: func(b *batchTx, ws []*Write[op]) { b.badRest = []*Write[op]{ws[2], ws[1]} },
			want:  []want{{0, errNoOutcome}, {0, errNoOutcome}, {0, errNoOutcome}, {0, errNoOutcome}},
			calls: "batch(4) rollback",
		},
		{
			name:  "a taken write left without an outcome is a bug, never acknowledged",
			setup: func(b *batchTx, ws []*Write[op]) { b.badRest = ws[1:] },
			want:  []want{{0, errNoOutcome}, {1, nil}, {2, nil}, {3, nil}},
			calls: "batch(4) savepoint run release savepoint run release savepoint run release commit rollback",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := make([]*Write[op], 4)
			for i := range ws {
				ctx := bg
				if tt.ctxs != nil {
					ctx = tt.ctxs[i]
				}
				ws[i] = write(ctx, ok)
			}
			b := &batchTx{}
			tt.setup(b, ws)
			c := &Committer[op]{begin: func(context.Context) (Tx[op], error) { return b, nil }}
			c.commit(ws)
			check(t, ws, tt.want)
			if got := strings.Join(b.calls, " "); got != tt.calls {
				t.Errorf("calls:\n got %s\nwant %s", got, tt.calls)
			}
		})
	}
}

// TestCommitCallersLeaving checks the group's context: one caller leaving
// while the group runs does not end it, and every caller leaving does.
func TestCommitCallersLeaving(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	b, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	var tx fakeTx
	var afterA, afterB error
	group := []*Write[op]{
		write(a, func() error {
			cancelA()
			afterA = tx.ctx.Err()
			return nil
		}),
		write(b, func() error {
			cancelB()
			select {
			case <-tx.ctx.Done():
			case <-time.After(10 * time.Second):
			}
			afterB = tx.ctx.Err()
			return nil
		}),
	}
	committer(&tx, nil).commit(group)
	if afterA != nil {
		t.Errorf("the group's context ended (%v) when one of its two callers left", afterA)
	}
	if !errors.Is(afterB, context.Canceled) {
		t.Errorf("the group's context after every caller left: %v, want context.Canceled", afterB)
	}
	// Both writes ran to the end of the group: the committer still tells
	// each its outcome, for a caller that waits regardless.
	check(t, group, []want{{1, nil}, {2, nil}})
}

// TestGroupContext checks the context a group's statements run with: it
// outlives any one caller, ends once every caller has gone, and ends at the
// latest deadline when every caller has one.
func TestGroupContext(t *testing.T) {
	a, cancelA := context.WithCancel(context.Background())
	b, cancelB := context.WithCancel(context.Background())
	ctx, stop := groupContext([]*Write[op]{{Ctx: a}, {Ctx: b}})
	defer stop()
	cancelA()
	select {
	case <-ctx.Done():
		t.Fatal("the group's context ended when one of its two callers left")
	case <-time.After(50 * time.Millisecond):
	}
	if _, ok := ctx.Deadline(); ok {
		t.Error("the group's context has a deadline though a caller has none")
	}
	cancelB()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the group's context outlived every caller")
	}

	soon, cancelSoon := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSoon()
	later, cancelLater := context.WithTimeout(context.Background(), time.Hour)
	defer cancelLater()
	ctx, stop = groupContext([]*Write[op]{{Ctx: soon}, {Ctx: later}})
	defer stop()
	want, _ := later.Deadline()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(want) {
		t.Errorf("the group's deadline = %v, %v; want the latest caller's, %v", d, ok, want)
	}
}

// TestCommitter runs writes through the committer's loop: writes waiting
// while a group commits go together into the next, each caller learns its
// own outcome, a caller that gives up before its group is not applied, and
// Close refuses later writes. (groupcommittest checks on each store that
// waiting writes share a group.)
func TestCommitter(t *testing.T) {
	var tx fakeTx
	var applied []string
	c := New(8, func(ctx context.Context) (Tx[op], error) { return &tx, nil })
	entered, gate := make(chan struct{}), make(chan struct{})
	var sizes []int
	c.SetTestHookGroup(func(n int) {
		sizes = append(sizes, n)
		if len(sizes) == 1 {
			close(entered)
			<-gate
		}
	})
	apply := func(name string, err error) op {
		return func() error {
			if err == nil {
				applied = append(applied, name)
			}
			return err
		}
	}
	first, err := c.Submit(context.Background(), apply("first", nil), errors.New("closed"))
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	type result struct {
		w   *Write[op]
		err error
	}
	results := make(chan result, 3)
	for _, fn := range []op{apply("second", nil), apply("third", errWrite)} {
		go func() {
			w, err := c.Submit(context.Background(), fn, errors.New("closed"))
			results <- result{w, err}
		}()
	}
	for c.Waiting() < 2 {
		time.Sleep(time.Millisecond)
	}
	// A caller that gives up while it waits is never applied.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		w, err := c.Submit(ctx, apply("abandoned", nil), errors.New("closed"))
		results <- result{w, err}
	}()
	for c.Waiting() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(gate)
	<-first.Done()
	var failed, ok int
	for range 3 {
		r := <-results
		if r.err != nil {
			if !errors.Is(r.err, context.Canceled) {
				t.Errorf("Submit: %v", r.err)
			}
			continue
		}
		<-r.w.Done()
		switch {
		case errors.Is(r.w.Err, errWrite):
			failed++
		case errors.Is(r.w.Err, context.Canceled):
		case r.w.Err == nil:
			ok++
		default:
			t.Errorf("write: %v", r.w.Err)
		}
	}
	c.Close()
	if ok != 1 || failed != 1 {
		t.Errorf("got %d applied and %d failed of the second group, want 1 and 1", ok, failed)
	}
	if slices.Contains(applied, "abandoned") {
		t.Errorf("applied %v: a write whose caller gave up was applied", applied)
	}
	if len(sizes) < 2 || sizes[0] != 1 {
		t.Errorf("group sizes %v; want the first alone, then more", sizes)
	}
	if _, err := c.Submit(context.Background(), apply("late", nil), errors.New("closed")); err == nil || err.Error() != "closed" {
		t.Errorf("Submit after Close = %v, want the closed error", err)
	}
}
