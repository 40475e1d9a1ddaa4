package cli

import "github.com/routeguide/routeguide/internal/server"

// defaultAddr is where the client finds a server by default: where `serve`
// listens by default.
const defaultAddr = server.DefaultAddr
