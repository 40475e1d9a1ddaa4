// Package webui is the directory's web page: static files embedded in the
// binary, served on the HTTP listener at "/". Nothing is fetched from
// outside, so the page works offline. It talks to the server only through the
// REST routes under /v1/ and the watch feed /v1/people:watch.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the page and its assets.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	return http.FileServerFS(sub)
}
