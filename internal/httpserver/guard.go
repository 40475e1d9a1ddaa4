package httpserver

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/rs/cors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A caller on loopback is a writer when the server has no tokens, and a
// browser on the same machine is such a caller for any page it shows. The
// guards keep those pages out:
//
//   - DNS rebinding: a page on evil.example whose name is made to resolve
//     to 127.0.0.1 sends requests with Host: evil.example; only the names
//     the server answers to pass (checkHost).
//   - Cross-site writes: a form or fetch from another origin. Writes from
//     another origin are refused by net/http's CrossOriginProtection
//     (Sec-Fetch-Site, else Origin against Host), and a POST must carry a
//     content type a form cannot send (checkContentType), so that it is
//     never a CORS "simple request" that skips the preflight.
//   - Cross-origin reads: CORS stays closed (no Access-Control-Allow-Origin)
//     unless --cors-origin names the origin.
//
// The peer a call is attributed to is the TCP peer, unless it is a proxy
// --trusted-proxy names, which then says who the client is (realClient).
func guard(next http.Handler, o Options) (http.Handler, error) {
	hosts := allowedHosts(o.Hosts)
	csrf := http.NewCrossOriginProtection()
	for _, origin := range o.CORSOrigins {
		if err := csrf.AddTrustedOrigin(origin); err != nil {
			return nil, fmt.Errorf("cors origin %q: %w", origin, err)
		}
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, status.New(codes.PermissionDenied, "cross-origin request refused: a page on another origin may not call this server (see --cors-origin)"))
	}))
	h := checkContentType(next)
	h = csrf.Handler(h)
	if len(o.CORSOrigins) > 0 {
		h = cors.New(cors.Options{
			AllowedOrigins: o.CORSOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
			AllowedHeaders: []string{
				"Authorization", "Content-Type", "Last-Event-ID",
				// Connect and gRPC-Web's own.
				"Connect-Protocol-Version", "Connect-Timeout-Ms", "Grpc-Timeout", "X-Grpc-Web", "X-User-Agent",
			},
			ExposedHeaders: []string{"Location", "Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin"},
			MaxAge:         600,
		}).Handler(h)
	}
	h = checkHost(h, hosts)
	if len(o.TrustedProxies) > 0 {
		h = realClient(h, o.TrustedProxies)
	}
	return h, nil
}

// allowedHosts returns the set of host names a request may name: those
// given, lower-cased and without a trailing dot, and localhost, which
// browsers resolve only to loopback. IP literals are always allowed (see
// checkHost).
func allowedHosts(names []string) map[string]bool {
	set := map[string]bool{"localhost": true}
	for _, n := range names {
		if n = normalizeHost(n); n != "" {
			set[n] = true
		}
	}
	return set
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// checkHost refuses a request whose Host is not an IP literal or one of
// hosts. A DNS-rebinding attack needs a name of the attacker's in Host, so
// IP literals are safe to accept, and are what a client that dials an
// address sends.
func checkHost(next http.Handler, hosts map[string]bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if _, err := netip.ParseAddr(host); err == nil || hosts[normalizeHost(host)] {
			next.ServeHTTP(w, r)
			return
		}
		writeStatus(w, status.Newf(codes.PermissionDenied, "host %q is not a name this server answers to: use its address, localhost, or a name given with --allowed-host", r.Host))
	})
}

// simpleContentTypes are the content types a cross-origin form or fetch can
// send without a CORS preflight.
var simpleContentTypes = map[string]bool{
	"application/x-www-form-urlencoded": true,
	"multipart/form-data":               true,
	"text/plain":                        true,
}

// checkContentType refuses a POST without a content type, or with one a
// form could send (415). Every Connect, gRPC-Web, gRPC and REST call names
// its own (application/json, application/proto, application/grpc...), and
// a browser must ask before sending those across origins.
func checkContentType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || simpleContentTypes[ct] {
			w.Header().Set("Accept-Post", "application/json, application/proto, application/grpc, application/grpc-web")
			writeStatusCode(w, http.StatusUnsupportedMediaType,
				status.Newf(codes.InvalidArgument, "content type %q: a POST needs application/json, or a Connect, gRPC-Web or gRPC content type", r.Header.Get("Content-Type")))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// realClient replaces the request's RemoteAddr, when the TCP peer is in
// one of proxies, with the client X-Forwarded-For names: the rightmost
// address that is not itself a trusted proxy, as each proxy appends the
// peer it saw; a hop that is not an IP address is refused (400). Without the header, or from any other peer, the TCP peer
// stands; the loopback rule and the watch limits then see the client.
func realClient(next http.Handler, proxies []netip.Prefix) http.Handler {
	trusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range proxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !trusted(peer.Addr()) {
			next.ServeHTTP(w, r)
			return
		}
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				// Taking the proxy as the client would make every such
				// request local when the proxy is on loopback.
				writeStatus(w, status.Newf(codes.InvalidArgument, "X-Forwarded-For from a trusted proxy names %q, not an IP address", strings.TrimSpace(hops[i])))
				return
			}
			if !trusted(a) || i == 0 {
				r = r.Clone(r.Context())
				r.RemoteAddr = netip.AddrPortFrom(a.Unmap(), 0).String()
				break
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Origins checks each --cors-origin value: scheme://host[:port], nothing
// more, as browsers send in Origin.
func Origins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("cors origin %q: want scheme://host[:port], as a browser sends in Origin", o)
		}
	}
	return nil
}
