package grpcserver

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/routeguide/routeguide/routeguidepb"
)

// dialHealthOnly serves h's health-only server on a bufconn and returns a
// client connection to it.
func dialHealthOnly(t *testing.T, h *healthHarness) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	served := make(chan error, 1)
	go func() { served <- h.srv.ServeHealth(lis) }()
	conn, err := grpc.NewClient("passthrough:///health",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		h.shutdown(t) // ends ServeHealth too
		if err := <-served; err != nil {
			t.Errorf("ServeHealth: %v", err)
		}
	})
	return conn
}

// checkHealth wants Check(svc) to answer want.
func checkHealth(t *testing.T, c healthpb.HealthClient, svc string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil || resp.GetStatus() != want {
		t.Errorf("health Check(%q) = %v, %v; want %v", svc, resp.GetStatus(), err, want)
	}
}

// TestHealthOnlyListener checks what a probe sees on the health-only
// listener: the main listeners' statuses, which follow the store, and a
// liveness status that stays SERVING through a store outage and turns
// NOT_SERVING only when Shutdown begins.
func TestHealthOnlyListener(t *testing.T) {
	h := startHealth(t)
	c := healthpb.NewHealthClient(dialHealthOnly(t, h))
	// A bound, so that a status never reported fails the test rather
	// than hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	live, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: LivenessService})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, ready, healthpb.HealthCheckResponse_SERVING)
	waitStatus(t, live, healthpb.HealthCheckResponse_SERVING)
	for _, svc := range []string{"", ServiceName, LivenessService} {
		checkHealth(t, c, svc, healthpb.HealthCheckResponse_SERVING)
	}
	checkHealth(t, h.health, LivenessService, healthpb.HealthCheckResponse_SERVING) // the main listener shares it

	h.store.answer(down)
	waitStatus(t, ready, healthpb.HealthCheckResponse_NOT_SERVING)
	checkHealth(t, c, "", healthpb.HealthCheckResponse_NOT_SERVING)
	h.waitPings(t, 3)
	checkHealth(t, c, LivenessService, healthpb.HealthCheckResponse_SERVING)

	h.store.answer(up)
	waitStatus(t, ready, healthpb.HealthCheckResponse_SERVING)
	checkHealth(t, c, LivenessService, healthpb.HealthCheckResponse_SERVING)

	// Shutdown turns liveness NOT_SERVING and keeps the health-only
	// listener answering while a call is still in flight on the main one.
	h.store.hold, h.store.held = make(chan struct{}), make(chan struct{})
	called := make(chan error, 1)
	go func() {
		_, err := h.client.GetPerson(context.Background(), &pb.Name{Name: "Alice"})
		called <- err
	}()
	<-h.store.held
	stopped := make(chan struct{})
	go func() {
		h.shutdown(t)
		close(stopped)
	}()
	waitStatus(t, live, healthpb.HealthCheckResponse_NOT_SERVING)
	checkHealth(t, c, LivenessService, healthpb.HealthCheckResponse_NOT_SERVING)
	close(h.store.hold)
	if err := <-called; err != nil {
		t.Errorf("GetPerson in flight during Shutdown: %v", err)
	}
	<-stopped
}

// TestHealthOnlyListenerServesNothingElse checks that the health-only
// listener, plaintext on any address, exposes neither RouteGuide nor
// reflection.
func TestHealthOnlyListenerServesNothingElse(t *testing.T) {
	h := startHealth(t)
	conn := dialHealthOnly(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := pb.NewRouteGuideClient(conn).GetPerson(ctx, &pb.Name{Name: "Alice"})
	if got := status.Code(err); got != codes.Unimplemented {
		t.Errorf("GetPerson on the health listener: %v (code %v); want Unimplemented", err, got)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err == nil {
		// Send reports io.EOF when the server has already ended the
		// stream; Recv has the status it ended with.
		if err = stream.Send(&reflectionpb.ServerReflectionRequest{
			MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
		}); err == nil || errors.Is(err, io.EOF) {
			_, err = stream.Recv()
		}
	}
	if got := status.Code(err); got != codes.Unimplemented {
		t.Errorf("reflection on the health listener: %v (code %v); want Unimplemented", err, got)
	}
	checkHealth(t, healthpb.NewHealthClient(conn), ServiceName, healthpb.HealthCheckResponse_SERVING)
}
