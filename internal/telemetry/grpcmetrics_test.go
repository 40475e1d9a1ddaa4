package telemetry

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"
)

// TestSameMetricsAsTheProvider checks that ServerMetrics describes exactly
// the metrics of go-grpc-middleware's Prometheus provider.
func TestSameMetricsAsTheProvider(t *testing.T) {
	descs := func(c prometheus.Collector) []string {
		ch := make(chan *prometheus.Desc, 16)
		c.Describe(ch)
		close(ch)
		var out []string
		for d := range ch {
			out = append(out, d.String())
		}
		slices.Sort(out)
		return out
	}
	ours := descs(NewServerMetrics())
	theirs := descs(grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram()))
	if !slices.Equal(ours, theirs) {
		t.Errorf("metrics differ from the provider's:\nours:   %q\ntheirs: %q", ours, theirs)
	}
}

// TestSameValuesAsTheProvider makes the same calls on two servers, one
// counted by ServerMetrics and one by the provider, and compares every
// series (histograms by their sample counts).
func TestSameValuesAsTheProvider(t *testing.T) {
	ours := NewServerMetrics()
	theirs := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	got := exercise(t, ours, ours.UnaryServerInterceptor(), ours.StreamServerInterceptor(), ours.InitializeMetrics)
	want := exercise(t, theirs, theirs.UnaryServerInterceptor(), theirs.StreamServerInterceptor(), func(s interface {
		GetServiceInfo() map[string]grpc.ServiceInfo
	}) {
		theirs.InitializeMetrics(s)
	})
	if !slices.Equal(got, want) {
		t.Errorf("series differ from the provider's:\nours:\n%s\ntheirs:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(got) < 20 {
		t.Errorf("only %d series", len(got))
	}
}

// exercise serves the health service counted by c, makes a few calls that
// succeed, fail and stream, and returns every series as text.
func exercise(t *testing.T, c prometheus.Collector, unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor, initialize func(interface {
	GetServiceInfo() map[string]grpc.ServiceInfo
})) []string {
	t.Helper()
	lis := bufconn.Listen(1 << 16)
	srv := grpc.NewServer(grpc.UnaryInterceptor(unary), grpc.StreamInterceptor(stream))
	hs := health.NewServer()
	hs.SetServingStatus("known", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	initialize(srv)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx := context.Background()
	for range 3 {
		if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "known"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"}); err == nil {
		t.Fatal("checking an unknown service succeeded")
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := client.Watch(wctx, &healthpb.HealthCheckRequest{Service: "known"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	hs.SetServingStatus("known", healthpb.HealthCheckResponse_NOT_SERVING)
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	for {
		if _, err := w.Recv(); err != nil {
			break
		}
	}
	srv.GracefulStop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range families {
		for _, m := range f.GetMetric() {
			out = append(out, f.GetName()+labels(m)+" "+value(m))
		}
	}
	slices.Sort(out)
	return out
}

func labels(m *dto.Metric) string {
	var b strings.Builder
	b.WriteString("{")
	for _, l := range m.GetLabel() {
		b.WriteString(l.GetName() + "=" + l.GetValue() + ",")
	}
	b.WriteString("}")
	return b.String()
}

func value(m *dto.Metric) string {
	switch {
	case m.GetCounter() != nil:
		return strconv.FormatFloat(m.GetCounter().GetValue(), 'g', -1, 64)
	case m.GetHistogram() != nil:
		return "count=" + strconv.FormatUint(m.GetHistogram().GetSampleCount(), 10)
	}
	return "?"
}

// TestHandlingBucketsResolveFastCalls checks that a call of 0.3ms, the
// time this server takes to answer from memory, lands in a bucket below
// 1ms, and that the buckets still reach seconds.
func TestHandlingBucketsResolveFastCalls(t *testing.T) {
	m := NewServerMetrics()
	m.seconds.WithLabelValues("unary", "RouteGuide", "GetPerson").Observe(0.0003)
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "grpc_server_handling_seconds" {
			continue
		}
		buckets := f.GetMetric()[0].GetHistogram().GetBucket()
		first := -1.0 // the upper bound of the first bucket holding the call
		for _, b := range buckets {
			if b.GetCumulativeCount() == 1 {
				first = b.GetUpperBound()
				break
			}
		}
		if first <= 0 || first >= 0.001 {
			t.Errorf("a 0.3ms call is first counted in the bucket up to %gs, want one below 1ms", first)
		}
		if top := buckets[len(buckets)-1].GetUpperBound(); top < 10 {
			t.Errorf("the largest bucket ends at %gs, want at least 10s", top)
		}
		return
	}
	t.Fatal("no grpc_server_handling_seconds")
}
