package grpcserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	"github.com/routeguide/routeguide/internal/people"
	pb "github.com/routeguide/routeguide/routeguidepb"
)

// A rapid reset (CVE-2023-44487) opens a stream and resets it at once, over
// and over. A reset stream stops counting against the connection's
// MAX_CONCURRENT_STREAMS as soon as the server reads the RST_STREAM, but its
// handler may still be running, so the HTTP/2 limit alone does not bound the
// work one connection can start. grpc-go (v1.85.0, and every release since
// 1.56.3) also gives each connection MaxConcurrentStreams handler slots:
// with all of them busy it stops reading that connection until a handler
// returns. A client that resets streams is thus paced by its own handlers:
// what it sends waits in its connection's socket buffers, then TCP pushes
// back on it, and its later calls queue behind its own backlog. grpc-go
// sends no GOAWAY for resets and keeps no count of them (it only stops
// reading a connection whose client leaves 10,000 of its RST_STREAM and
// other control frames unread); the connection stays open and answers
// once the server has worked through what it sent.
// Other connections have slots of their own and go on being served. These
// tests hold the server to that.

const (
	// resetLimit is the MaxConcurrentStreams the flooded server runs with:
	// small, so a handler beyond it shows.
	resetLimit = 8
	// lookupHold is how long a lookup of Alice, the name the flood asks
	// for, takes whatever its context says: work a reset cannot cut short,
	// the kind that piles up when handlers outlive their streams. The
	// canary asks for Bob, answered at once.
	lookupHold = 10 * time.Millisecond
	// floodConns is how many connections reset streams at once.
	floodConns = 6
	// canaryCallers is how many goroutines call through the canary's
	// connection at once, fewer than resetLimit so that its own slots
	// never hold it back, and minCanaryCalls how many calls they must
	// have had answered while the server worked through the flood, which
	// takes a second or more.
	canaryCallers  = 4
	minCanaryCalls = 20
)

// inFlight counts what is running now and the most that ever ran at once.
type inFlight struct {
	now, max atomic.Int64
}

func (f *inFlight) enter() {
	n := f.now.Add(1)
	for m := f.max.Load(); n > m && !f.max.CompareAndSwap(m, n); m = f.max.Load() {
	}
}

func (f *inFlight) leave() { f.now.Add(-1) }

// connLoad is what one server connection runs: its handlers and its person
// lookups.
type connLoad struct {
	remote   string
	started  atomic.Int64 // handlers begun
	handlers inFlight
	lookups  inFlight
}

type connLoadKey struct{}

func loadOf(ctx context.Context) *connLoad {
	if c, ok := ctx.Value(connLoadKey{}).(*connLoad); ok {
		return c
	}
	return new(connLoad) // not reached: every call comes through TagConn
}

// loadMeter is a stats.Handler that tells connections apart: every call's
// context carries the connLoad of the connection it came on.
type loadMeter struct {
	mu    sync.Mutex
	conns []*connLoad // guarded by mu
}

func (m *loadMeter) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	c := &connLoad{remote: info.RemoteAddr.String()}
	m.mu.Lock()
	m.conns = append(m.conns, c)
	m.mu.Unlock()
	return context.WithValue(ctx, connLoadKey{}, c)
}

func (m *loadMeter) HandleConn(context.Context, stats.ConnStats) {}

func (m *loadMeter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC brackets each handler: grpc-go reports Begin before it runs the
// handler and End after it returns, both on the handler's goroutine.
func (m *loadMeter) HandleRPC(ctx context.Context, s stats.RPCStats) {
	c := loadOf(ctx)
	switch s.(type) {
	case *stats.Begin:
		c.started.Add(1)
		c.handlers.enter()
	case *stats.End:
		c.handlers.leave()
	}
}

func (m *loadMeter) snapshot() []*connLoad {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*connLoad(nil), m.conns...)
}

// flooder is one connection that resets streams, as the test sees it.
type flooder struct {
	local   string       // its local address: the peer the server sees
	streams int64        // the handlers the server must start for it
	call    func() error // GetPerson on the same connection
	close   func()
}

// TestRapidResetIsBounded floods a server on a real TCP port with streams
// reset as soon as they open, over several connections at once, while a
// canary on a connection of its own keeps calling GetPerson. No connection
// ever runs more than MaxConcurrentStreams handlers; the canary is answered
// throughout; each flooding connection is paced rather than closed, and once
// the server has worked through what it sent, answers its next call; and
// the server then shuts down gracefully, leaving no goroutine behind.
func TestRapidResetIsBounded(t *testing.T) {
	tests := []struct {
		name    string
		flood   func(t *testing.T, addr string, streams int) []flooder
		streams int // per connection
	}{
		// HEADERS, DATA, RST_STREAM written straight to the socket, as an
		// attacker would, with no client-side stream limit.
		{"raw frames", floodRaw, 2000},
		// A client library whose caller cancels every stream at once: the
		// same resets, within grpc-go's client-side stream limit, and
		// slower to send.
		{"grpc-go clients", floodClients, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseline := goleak.IgnoreCurrent()
			meter := &loadMeter{}
			seed := seedStore()
			store := storeWith{Store: seed, person: func(ctx context.Context, name string) (people.Person, error) {
				c := loadOf(ctx)
				c.lookups.enter()
				defer c.lookups.leave()
				if name == "Alice" {
					time.Sleep(lookupHold)
				}
				return seed.Person(ctx, name)
			}}
			limits := DefaultLimits()
			limits.MaxConcurrentStreams = resetLimit
			srv := New(store, Options{Log: slog.New(slog.DiscardHandler), Limits: limits, Slow: time.Second, StatsHandler: meter})
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					srv.Shutdown(context.Background())
					<-served
				}
			})
			addr := lis.Addr().String()

			canary, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer canary.Close()
			canaryClient := pb.NewRouteGuideClient(canary)
			if err := lookUp(canaryClient, bob); err != nil {
				t.Fatalf("canary before the flood: %v", err)
			}
			var answered, failed atomic.Int64
			var firstFailure atomic.Value
			stop := make(chan struct{})
			var callers sync.WaitGroup
			for range canaryCallers {
				callers.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := lookUp(canaryClient, bob); err != nil {
							failed.Add(1)
							firstFailure.CompareAndSwap(nil, err.Error())
						} else {
							answered.Add(1)
						}
					}
				})
			}
			stopCanary := sync.OnceFunc(func() { close(stop); callers.Wait() })
			t.Cleanup(stopCanary)

			flooders := tt.flood(t, addr, tt.streams)
			// The flooding clients are done once their frames are in the
			// socket; the server, reading each connection only as fast as
			// its handlers finish, is done when it has started a handler
			// for every stream. The canary runs until then.
			if err := waitStarted(meter, flooders, 30*time.Second); err != nil {
				t.Error(err)
			}
			stopCanary()

			if n := failed.Load(); n > 0 {
				t.Errorf("canary: %d of %d calls failed during the flood; first: %v", n, n+answered.Load(), firstFailure.Load())
			}
			if n := answered.Load(); n < minCanaryCalls {
				t.Errorf("canary: %d calls answered during the flood, want at least %d", n, minCanaryCalls)
			}

			flooding := make(map[string]bool)
			var streams int64
			for _, f := range flooders {
				flooding[f.local] = true
				streams += f.streams
			}
			saturated := 0
			for _, c := range meter.snapshot() {
				if got := c.handlers.max.Load(); got > resetLimit {
					t.Errorf("connection %s ran %d handlers at once, want at most %d", c.remote, got, resetLimit)
				}
				if got := c.lookups.max.Load(); got > resetLimit {
					t.Errorf("connection %s ran %d lookups at once, want at most %d", c.remote, got, resetLimit)
				}
				if flooding[c.remote] && c.handlers.max.Load() == resetLimit {
					saturated++
				}
				t.Logf("connection %s: %d handlers started, at most %d handlers and %d lookups at once",
					c.remote, c.started.Load(), c.handlers.max.Load(), c.lookups.max.Load())
			}
			t.Logf("%d streams reset on %d connections; canary answered %d calls", streams, len(flooders), answered.Load())
			// The bound means something only if the flood pressed against
			// it: handlers outliving their streams filled every slot.
			if saturated == 0 {
				t.Errorf("no flooding connection reached %d handlers at once; the flood did not test the limit", resetLimit)
			}

			// Paced, not closed: each flooding connection answers at once
			// now that its backlog is gone.
			for _, f := range flooders {
				if err := f.call(); err != nil {
					t.Errorf("%s: GetPerson after the flood: %v", f.local, err)
				}
				f.close()
			}
			if err := lookUp(canaryClient, bob); err != nil {
				t.Errorf("canary after the flood: %v", err)
			}
			canary.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if !srv.Shutdown(ctx) {
				t.Errorf("Shutdown after the flood was not graceful")
			}
			stopped = true
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
			goleak.VerifyNone(t, baseline)
		})
	}
}

// waitStarted waits until the server has started a handler for every stream
// each flooder opened, or fails after timeout.
func waitStarted(meter *loadMeter, flooders []flooder, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, f := range flooders {
		for {
			var started int64
			for _, c := range meter.snapshot() {
				if c.remote == f.local {
					started = c.started.Load()
				}
			}
			if started >= f.streams {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %d of %d handlers started after %v", f.local, started, f.streams, timeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// lookUp calls GetPerson for want's name within a liveness deadline and
// checks the answer.
func lookUp(client pb.RouteGuideClient, want *pb.Person) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := client.GetPerson(ctx, &pb.Name{Name: want.GetName()})
	if err != nil {
		return err
	}
	if !proto.Equal(got, want) {
		return fmt.Errorf("GetPerson(%s) = %v, want %v", want.GetName(), got, want)
	}
	return nil
}

// floodRaw opens floodConns raw HTTP/2 connections and on each writes
// streams that are reset straight after their request: GetPerson with its
// request, and GetPeople with one name.
func floodRaw(t *testing.T, addr string, streams int) []flooder {
	var (
		wg       sync.WaitGroup
		flooders []flooder
	)
	for range floodConns {
		c, err := dialRaw(addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(c.close)
		local := c.conn.LocalAddr().String()
		flooders = append(flooders, flooder{
			local:   local,
			streams: int64(streams),
			call: func() error {
				if err := c.getAlice(); err != nil {
					return err
				}
				if g := c.goAways(); len(g) > 0 {
					return fmt.Errorf("server sent GOAWAY %v", g)
				}
				return nil
			},
			close: c.close,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sent, err := c.flood(streams); err != nil {
				t.Errorf("%s: flood stopped after %d streams: %v", local, sent, err)
			}
		}()
	}
	wg.Wait()
	return flooders
}

// floodClients opens floodConns grpc-go connections and on each starts
// GetPeople and WatchPeople streams from several goroutines, cancelling each
// as soon as it starts (after sending one name, for GetPeople).
func floodClients(t *testing.T, addr string, streams int) []flooder {
	const workers = 8
	var (
		wg       sync.WaitGroup
		flooders []flooder
	)
	for range floodConns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		client := pb.NewRouteGuideClient(cc)
		// The first call connects, and tells the connection's address.
		var p peer.Peer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = client.GetPerson(ctx, &pb.Name{Name: "Bob"}, grpc.Peer(&p))
		cancel()
		if err != nil {
			t.Fatalf("GetPerson before the flood: %v", err)
		}
		flooders = append(flooders, flooder{
			local:   p.LocalAddr.String(),
			streams: 1 + int64(streams), // and the first call
			call:    func() error { return lookUp(client, alice) },
			close:   func() { cc.Close() },
		})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range streams / workers {
					ctx, cancel := context.WithCancel(context.Background())
					if (w+i)%2 == 0 {
						if s, err := client.GetPeople(ctx); err == nil {
							s.Send(&pb.Name{Name: "Alice"})
						} else {
							t.Errorf("GetPeople: %v", err)
						}
					} else if _, err := client.WatchPeople(ctx, &pb.WatchPeopleRequest{SendCurrent: true}); err != nil {
						t.Errorf("WatchPeople: %v", err)
					}
					cancel()
				}
			}()
		}
	}
	wg.Wait()
	return flooders
}

// rawClient speaks HTTP/2 to the server through x/net's Framer, with no
// gRPC client in between. One goroutine writes; read, on its own goroutine,
// only records.
type rawClient struct {
	conn   net.Conn
	bw     *bufio.Writer
	fr     *http2.Framer // writes only
	hbuf   bytes.Buffer
	enc    *hpack.Encoder
	nextID uint32
	acked  bool

	settings     chan struct{} // closed when the server's SETTINGS arrive
	settingsOnce sync.Once
	probe        atomic.Uint32 // the stream whose answer read collects
	answer       chan rawAnswer
	readDone     chan struct{}
	readErr      error // set before readDone closes

	mu     sync.Mutex
	goAway []string // guarded by mu
}

// rawAnswer is the response to the probe stream.
type rawAnswer struct {
	status string // grpc-status
	data   []byte
	reset  http2.ErrCode
}

func dialRaw(addr string) (*rawClient, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawClient{
		conn:     conn,
		bw:       bufio.NewWriterSize(conn, 64<<10),
		nextID:   1,
		settings: make(chan struct{}),
		answer:   make(chan rawAnswer, 1),
		readDone: make(chan struct{}),
	}
	c.fr = http2.NewFramer(c.bw, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	// The flood is bounded in time as well as count: a server that stopped
	// reading for good fails the test instead of hanging it.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	go c.read()
	// The largest windows HTTP/2 allows, so the server never waits for a
	// WINDOW_UPDATE from a client too busy resetting to send one.
	c.bw.WriteString(http2.ClientPreface)
	c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	c.fr.WriteWindowUpdate(0, 1<<31-1-65535)
	if err := c.bw.Flush(); err != nil {
		conn.Close()
		<-c.readDone
		return nil, err
	}
	return c, nil
}

func (c *rawClient) close() {
	c.conn.Close()
	<-c.readDone
}

func (c *rawClient) goAways() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.goAway...)
}

// read records the server's SETTINGS, any GOAWAY, and the probe's answer,
// until the connection ends.
func (c *rawClient) read() {
	defer close(c.readDone)
	fr := http2.NewFramer(nil, c.conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var a rawAnswer
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			c.readErr = err
			return
		}
		probe := f.Header().StreamID != 0 && f.Header().StreamID == c.probe.Load()
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.settingsOnce.Do(func() { close(c.settings) })
			}
		case *http2.GoAwayFrame:
			c.mu.Lock()
			c.goAway = append(c.goAway, fmt.Sprintf("%v %q", f.ErrCode, f.DebugData()))
			c.mu.Unlock()
		case *http2.MetaHeadersFrame:
			if !probe {
				continue
			}
			if s := f.PseudoValue("status"); s != "" && s != "200" {
				a.status = "http " + s
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" {
					a.status = hf.Value
				}
			}
			if f.StreamEnded() {
				c.deliver(a)
			}
		case *http2.DataFrame:
			if probe {
				a.data = append(a.data, f.Data()...)
				if f.StreamEnded() {
					c.deliver(a)
				}
			}
		case *http2.RSTStreamFrame:
			if probe {
				a.reset = f.ErrCode
				c.deliver(a)
			}
		}
	}
}

// deliver hands the probe's answer over, once: anything the server sends
// on the stream after it ended is not waited for.
func (c *rawClient) deliver(a rawAnswer) {
	select {
	case c.answer <- a:
	default:
	}
}

// ackSettings acknowledges the server's SETTINGS once they have arrived.
func (c *rawClient) ackSettings() {
	if c.acked {
		return
	}
	select {
	case <-c.settings:
		c.fr.WriteSettingsAck()
		c.acked = true
	default:
	}
}

func (c *rawClient) writeHeaders(id uint32, method string) error {
	c.hbuf.Reset()
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: c.conn.RemoteAddr().String()},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	} {
		c.enc.WriteField(f)
	}
	return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true})
}

// flood opens n streams, each reset right after its request, flushing every
// few streams so the server reads them in bursts. It returns how many it
// wrote.
func (c *rawClient) flood(n int) (int, error) {
	msg := grpcMessage(&pb.Name{Name: "Alice"})
	for i := range n {
		c.ackSettings()
		id := c.nextID
		c.nextID += 2
		unary := i%2 == 0
		method := "/RouteGuide/GetPeople"
		if unary {
			method = "/RouteGuide/GetPerson"
		}
		if err := c.writeHeaders(id, method); err != nil {
			return i, err
		}
		if err := c.fr.WriteData(id, unary, msg); err != nil {
			return i, err
		}
		if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			return i, err
		}
		if i%16 == 15 {
			if err := c.bw.Flush(); err != nil {
				return i, err
			}
		}
	}
	return n, c.bw.Flush()
}

// getAlice calls GetPerson on a new stream and leaves it open until it is
// answered.
func (c *rawClient) getAlice() error {
	c.ackSettings()
	id := c.nextID
	c.nextID += 2
	c.probe.Store(id)
	if err := c.writeHeaders(id, "/RouteGuide/GetPerson"); err != nil {
		return err
	}
	if err := c.fr.WriteData(id, true, grpcMessage(&pb.Name{Name: "Alice"})); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	var a rawAnswer
	select {
	case a = <-c.answer:
	case <-c.readDone:
		return fmt.Errorf("connection ended before the answer: %w", c.readErr)
	case <-time.After(5 * time.Second):
		return errors.New("no answer within 5s")
	}
	if a.reset != 0 {
		return fmt.Errorf("stream reset: %v", a.reset)
	}
	if a.status != "0" {
		return fmt.Errorf("grpc-status %q, want 0", a.status)
	}
	if len(a.data) < 5 || int(binary.BigEndian.Uint32(a.data[1:5])) != len(a.data)-5 {
		return fmt.Errorf("answer is not one gRPC message: % x", a.data)
	}
	got := new(pb.Person)
	if err := proto.Unmarshal(a.data[5:], got); err != nil {
		return err
	}
	if !proto.Equal(got, alice) {
		return fmt.Errorf("GetPerson(Alice) = %v, want %v", got, alice)
	}
	return nil
}

// grpcMessage frames m as one uncompressed gRPC message.
func grpcMessage(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}
