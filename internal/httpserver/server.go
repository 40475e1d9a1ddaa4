// Package httpserver serves RouteGuide on its HTTP listener (--http-addr),
// over HTTP/1.1 and HTTP/2 (h2 with TLS, h2c without): the Connect protocol
// (JSON and binary), gRPC-Web and gRPC; the REST resources the protos'
// google.api.http rules declare; the watch feed as Server-Sent Events; the
// OpenAPI document; and the directory page.
//
// Every protocol reaches the service through grpcserver.Server.ServeHTTP,
// translated by connectrpc.com/vanguard, so the native listener's
// interceptors apply to each call: auth and roles, drain, recovery, logging,
// metrics and tracing, and the limits on messages and watches. What grpc-go
// enforces per connection on the native listener (streams per connection,
// header size, handshake and idle timeouts) the http.Server enforces here.
// In front of it all stand the browser's guards (guard.go): the Host a
// request names, cross-origin writes, CORS, and which proxy may say who the
// client is.
package httpserver

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"connectrpc.com/vanguard"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcserver"
)

// DefaultKeepalive is how often an idle watch feed sends a comment line, so
// that proxies and browsers do not time it out.
const DefaultKeepalive = 15 * time.Second

// Service is the gRPC server the HTTP listener hands every call to;
// grpcserver.Server is the one `routeguide serve` uses.
type Service interface {
	http.Handler
	// Services returns the full names of the services to serve.
	Services() []string
}

// Options configures the HTTP listener.
type Options struct {
	// Log receives the HTTP server's own errors.
	Log *slog.Logger
	// Limits are the native listener's; the HTTP server enforces the same.
	Limits grpcserver.Limits
	// TLS, when not nil, serves HTTPS (h2 and HTTP/1.1) with this
	// configuration's certificates and client verification.
	TLS *tls.Config
	// Hosts are the names a request's Host header may give besides IP
	// literals and localhost: the listen address's host name, the TLS
	// certificate's names, and --allowed-host. See allowedHosts.
	Hosts []string
	// CORSOrigins are the origins ("https://app.example.com") whose pages
	// may call the server from a browser; none by default.
	CORSOrigins []string
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For names the client; none by default.
	TrustedProxies []netip.Prefix
	// Page serves the directory page at "/"; nil serves nothing there.
	Page http.Handler
	// OpenAPI is the OpenAPI document served at /openapi.json.
	OpenAPI []byte
	// Keepalive is how often an idle watch feed sends a comment line; 0
	// means DefaultKeepalive.
	Keepalive time.Duration
}

// Server is RouteGuide's HTTP listener.
type Server struct {
	http *http.Server
	// tls says whether the listeners serve TLS. It is decided once in New:
	// http.Server's first Serve sets a TLSConfig of its own while setting up
	// HTTP/2, so reading TLSConfig in Serve would turn the other listeners
	// to TLS.
	tls bool
	log *slog.Logger
}

// New returns the HTTP server for svc. It fails when a CORS origin is not a
// scheme://host[:port] origin.
func New(svc Service, o Options) (*Server, error) {
	h, err := Handler(svc, o)
	if err != nil {
		return nil, err
	}
	l := o.Limits
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if o.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		// h2c: gRPC clients speak HTTP/2 without TLS ("prior knowledge").
		protocols.SetUnencryptedHTTP2(true)
	}
	hs := &http.Server{
		Handler:   h,
		Protocols: &protocols,
		// The native listener's grpc.ConnectionTimeout bounds a handshake;
		// here the TLS handshake and the request's headers share it.
		ReadHeaderTimeout: l.ConnectionTimeout,
		// grpc-go's MaxConnectionIdle closes a connection without calls;
		// IdleTimeout closes one without requests.
		IdleTimeout: l.MaxConnectionIdle,
		// Also HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE.
		MaxHeaderBytes: int(l.MaxHeaderListSize),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: int(l.MaxConcurrentStreams),
			// As the native listener's keepalive: a silent connection is
			// pinged, and closed when the ping goes unanswered.
			SendPingTimeout: l.KeepaliveTime,
			PingTimeout:     l.KeepaliveTimeout,
		},
		ErrorLog: slog.NewLogLogger(o.Log.Handler(), slog.LevelDebug),
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		cfg.NextProtos = []string{"h2", "http/1.1"}
		hs.TLSConfig = cfg
	}
	return &Server{http: hs, tls: o.TLS != nil, log: o.Log}, nil
}

// Handler returns the HTTP listener's handler for svc, guards included.
func Handler(svc Service, o Options) (http.Handler, error) {
	transcoder, err := newTranscoder(svc, o.Limits)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/people:watch", &watchHandler{
		svc:       svc,
		keepalive: cmp.Or(o.Keepalive, DefaultKeepalive),
		stall:     cmp.Or(o.Limits.WatchStallTimeout, grpcserver.DefaultLimits().WatchStallTimeout),
	})
	mux.Handle("/v1/", rest(transcoder))
	if o.OpenAPI != nil {
		mux.Handle("GET /openapi.json", openAPI(o.OpenAPI))
	}
	page := o.Page
	if page == nil {
		page = http.NotFoundHandler()
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			// Connect, gRPC-Web and gRPC calls: POST /Service/Method.
			// REST lives under /v1/, so a call here without Connect's
			// version header is a Connect unary call all the same (as
			// connect-go servers accept it), and curl needs no header.
			if r.Header.Get("Connect-Protocol-Version") == "" && !streamingContentType(r.Header.Get("Content-Type")) {
				r.Header.Set("Connect-Protocol-Version", "1")
			}
			transcoder.ServeHTTP(w, r)
		case http.MethodGet, http.MethodHead:
			page.ServeHTTP(w, r)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			writeStatusCode(w, http.StatusMethodNotAllowed, status.Newf(codes.Unimplemented, "method %s: the page is read with GET, calls are made with POST", r.Method))
		}
	}))
	return guard(mux, o)
}

// streamingContentType reports whether ct is a Connect streaming, gRPC or
// gRPC-Web content type, which Connect's version header does not go with.
func streamingContentType(ct string) bool {
	for _, prefix := range []string{"application/connect+", "application/grpc"} {
		if strings.HasPrefix(ct, prefix) {
			return true
		}
	}
	return false
}

// newTranscoder returns the vanguard handler that turns Connect, gRPC-Web
// and REST calls into gRPC calls to svc, and passes gRPC calls through.
// Each message it holds is bounded by the native listener's message limit.
func newTranscoder(svc Service, l grpcserver.Limits) (*vanguard.Transcoder, error) {
	names := svc.Services()
	services := make([]*vanguard.Service, 0, len(names))
	for _, name := range names {
		services = append(services, vanguard.NewService(name, svc))
	}
	t, err := vanguard.NewTranscoder(services, vanguard.WithCodec(newJSONCodec), vanguard.WithDefaultServiceOptions(
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto),
		vanguard.WithMaxMessageBufferBytes(uint32(l.MaxRecvMsgSize)),
		vanguard.WithMaxGetURLBytes(uint32(l.MaxHeaderListSize)),
	))
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	return t, nil
}

// Serve accepts connections on every listener until Shutdown. It returns nil
// after Shutdown, or the first listener's failure otherwise.
func (s *Server) Serve(listeners ...net.Listener) error {
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			if s.tls {
				errc <- s.http.ServeTLS(l, "", "")
			} else {
				errc <- s.http.Serve(l)
			}
		}()
	}
	var first error
	for range listeners {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
			s.http.Close()
		}
	}
	return first
}

// Shutdown stops accepting connections and waits for the requests in
// flight; when ctx ends first, it closes the connections left. Watch feeds
// end when the service drains (grpcserver.Server.Drain), which should come
// first. It reports whether every request finished.
func (s *Server) Shutdown(ctx context.Context) (graceful bool) {
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
		return false
	}
	return true
}
