package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/routeguide/routeguide/internal/grpcserver"
	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
	"github.com/routeguide/routeguide/internal/syncbuf"
)

// TestHealthSurvivesTerminatedConnections terminates the idle pooled
// connections of a server's store, as a database restarting a backend or
// a connection pooler does, while PostgreSQL stays up: health must stay
// SERVING throughout.
func TestHealthSurvivesTerminatedConnections(t *testing.T) {
	app := fmt.Sprintf("routeguide_health_%d", rand.Uint64()>>1)
	url := postgrestest.Schema(t) + "&application_name=" + app
	s := open(t, url, 0)
	logs := &syncbuf.Buffer{}
	srv := grpcserver.New(s, grpcserver.Options{
		Log:        slog.New(slog.NewTextHandler(logs, nil)),
		Limits:     grpcserver.DefaultLimits(),
		StoreCheck: 20 * time.Millisecond,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-served
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: grpcserver.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		statuses []healthpb.HealthCheckResponse_ServingStatus
	)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			resp, err := watch.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			statuses = append(statuses, resp.GetStatus())
			mu.Unlock()
		}
	}()

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	for range 10 {
		// Fill the pool with several idle connections, then end them all.
		// A read on a connection ended in the previous round fails; that
		// is not what this test is about.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { s.Person(ctx, "Alice") })
		}
		wg.Wait()
		var n int
		err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'idle' AND pid <> pg_backend_pid() AND query NOT LIKE 'LISTEN%'`, app).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		killed += n
		time.Sleep(100 * time.Millisecond) // five checks
	}
	if killed == 0 {
		t.Fatal("no idle connection was terminated")
	}
	cancel()
	<-watching
	mu.Lock()
	defer mu.Unlock()
	for _, st := range statuses {
		if st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health went %v after idle connections were terminated; statuses %v", st, statuses)
			break
		}
	}
	if strings.Contains(logs.String(), "store unreachable") {
		t.Errorf("the server logged the store unreachable; logs:\n%s", logs.String())
	}
	t.Logf("terminated %d idle connections; health statuses seen: %v", killed, statuses)
}
