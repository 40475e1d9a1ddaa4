// Package webui is the directory's web page: static files embedded in the
// binary, served on the HTTP listener at "/". Nothing is fetched from
// outside, so the page works offline. It talks to the server only through the
// REST routes under /v1/ and the watch feed /v1/people:watch.
//
// The page is plain HTML, CSS and JavaScript modules, with no build step:
// the files in static/ are what the browser runs.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy every answer of Handler carries. The
// page runs only its own scripts and styles (no inline script, no style
// attribute, no eval), talks only to its own origin, and may not be framed.
// form-action 'none': every form is handled by script, so a form submitted
// before the script loads goes nowhere instead of putting what was typed,
// a token say, in an address.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

// contentTypes names the type of each kind of file the page ships. It is a
// table of its own rather than package mime, whose answers follow the
// machine's /etc/mime.types.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	name    string
	content []byte
	ctype   string
	etag    string
}

// Handler serves the page at "/" and its assets by their names, for GET and
// HEAD; any other path answers 404 and any other method 405. Every answer
// carries the security headers; files carry an ETag and "Cache-Control:
// no-cache", so a browser revalidates (a 304 when nothing changed) and never
// runs a page older than the binary serving it. It panics if the embedded
// files cannot be read, which only a broken build can cause.
func Handler() http.Handler {
	files, err := load(static)
	if err != nil {
		panic(fmt.Sprintf("webui: %v", err))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		f, ok := files[r.URL.Path]
		if !ok {
			h.Set("Cache-Control", "no-store")
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			h.Set("Cache-Control", "no-store")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		// ServeContent answers If-None-Match with 304, Range requests and
		// HEAD; embedded files have no modification time to offer.
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.content))
	})
}

// load reads every file under static/ and returns them by the path they are
// served at: "/" for index.html, "/NAME" for the others.
func load(fsys fs.FS) (map[string]file, error) {
	sub, err := fs.Sub(fsys, "static")
	if err != nil {
		return nil, err
	}
	files := make(map[string]file)
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(name)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", name)
		}
		sum := sha256.Sum256(content)
		f := file{name: name, content: content, ctype: ctype, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}
		if name == "index.html" {
			files["/"] = f
		} else {
			files["/"+name] = f
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["/"]; !ok {
		return nil, fmt.Errorf("static/index.html is missing")
	}
	return files, nil
}
