package grpcclient

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // client-side health checking, which serviceConfig turns on
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// serviceConfig is how every RouteGuide client uses the replicas behind its
// target:
//
//   - round_robin spreads calls over every replica, where pick_first (grpc-go's
//     default) would send them all to one;
//   - healthCheckConfig watches each replica's RouteGuide health, so that a
//     replica reporting NOT_SERVING (its store unreachable, or draining) gets
//     no calls while its connection stays up. A server without the health
//     service counts as healthy;
//   - the reads (GetPerson, GetPeople, ListPeople, WatchPeople,
//     ListPersonChanges) and the unary writes (AddPerson, UpdatePerson,
//     DeletePerson) are tried again on UNAVAILABLE, which is what a replica
//     that died or went away answers. grpc-go retries a stream only until
//     its first answer arrives, so a stream is never replayed halfway. A
//     write that reached a replica before it died may have been stored:
//     retrying it is safe because the client gives every write a request
//     id, and the server answers a repeat with the first answer (see
//     retryWrite, which also retries what this policy gave up on);
//   - retryThrottling stops retries while most calls fail (every replica
//     down), so that retries do not multiply the load of an outage: each
//     failed call takes a token, each success gives back a tenth, and retries
//     stop while half the tokens are gone. The bucket is large enough for
//     the calls in flight on a replica that dies under load.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "healthCheckConfig": {"serviceName": "RouteGuide"},
  "methodConfig": [{
    "name": [
      {"service": "RouteGuide", "method": "GetPerson"},
      {"service": "RouteGuide", "method": "GetPeople"},
      {"service": "RouteGuide", "method": "ListPeople"},
      {"service": "RouteGuide", "method": "WatchPeople"},
      {"service": "RouteGuide", "method": "ListPersonChanges"},
      {"service": "RouteGuide", "method": "AddPerson"},
      {"service": "RouteGuide", "method": "UpdatePerson"},
      {"service": "RouteGuide", "method": "DeletePerson"}
    ],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.05s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }],
  "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1}
}`

// listScheme names the resolver of a comma-separated list of addresses. It
// is never registered globally: each connection to a list gets a resolver of
// its own through grpc.WithResolvers.
const listScheme = "routeguide-list"

// Addresses returns the addresses of target: one for host:port, each of a
// comma-separated list, and none for a target with a resolver scheme, such
// as dns:///name:port, whose resolver finds them. It fails, naming the
// entry, when an address is not host:port, so that a missing port is not
// dialed at some default.
func Addresses(target string) ([]string, error) {
	if strings.Contains(target, "://") {
		return nil, nil
	}
	addrs := strings.Split(target, ",")
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			if len(addrs) == 1 {
				return nil, fmt.Errorf("%q: want host:port", a)
			}
			return nil, fmt.Errorf("%q: entry %q: want host:port", target, a)
		}
	}
	return addrs, nil
}

// Dial returns a connection to target: host:port, a comma-separated list of
// host:port (one replica each), or any target grpc-go resolves, such as
// dns:///name:port (every address the name has). Calls are balanced and
// retried as serviceConfig says. The connection is plaintext unless opts
// give credentials. It connects lazily, on the first call; it fails only
// when target cannot be parsed.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	addrs, err := Addresses(target)
	if err != nil {
		return nil, err
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(serviceConfig),
	}
	name := target
	if len(addrs) > 1 {
		// grpc-go's targets hold one name; a list becomes one target whose
		// resolver hands over every address at once.
		r := manual.NewBuilderWithScheme(listScheme)
		r.InitialState(listState(addrs))
		base = append(base, grpc.WithResolvers(r))
		name = listScheme + ":///" + target
	}
	conn, err := grpc.NewClient(name, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", target, err)
	}
	return conn, nil
}

// listState returns the resolver state of a list of addresses: one endpoint
// each, with its host as the name TLS verifies, since the target as a whole
// (the list) names no host.
func listState(addrs []string) resolver.State {
	var s resolver.State
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a) // checked by Addresses
		s.Endpoints = append(s.Endpoints, resolver.Endpoint{
			Addresses: []resolver.Address{{Addr: a, ServerName: host}},
		})
	}
	return s
}
