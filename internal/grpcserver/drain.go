package grpcserver

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errDraining ends open streams when the server shuts down, so that their
// clients reconnect to a server that is staying up (see calls.serveStream).
var errDraining = status.Error(codes.Unavailable, "server is shutting down; retry")
