package webui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// get asks the handler for path with method and extra headers.
func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var securityHeaders = map[string]string{
	"Content-Security-Policy": ContentSecurityPolicy,
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

func checkSecurityHeaders(t *testing.T, res *http.Response) {
	t.Helper()
	for name, want := range securityHeaders {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", res.Request.URL.Path, name, got, want)
		}
	}
}

func TestHandlerServesFiles(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, ctype, contains string
	}{
		{"/", "text/html; charset=utf-8", `<script type="module" src="/app.js"></script>`},
		{"/app.js", "text/javascript; charset=utf-8", "new Feed("},
		{"/api.js", "text/javascript; charset=utf-8", "export class APIError"},
		{"/watch.js", "text/javascript; charset=utf-8", "Last-Event-ID"},
		{"/style.css", "text/css; charset=utf-8", ":focus-visible"},
		{"/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := get(t, h, http.MethodGet, tt.path)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != tt.ctype {
				t.Errorf("Content-Type %q, want %q", got, tt.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			checkSecurityHeaders(t, res)
			if b := body(t, res); !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}

			etag := res.Header.Get("ETag")
			if !regexp.MustCompile(`^"[A-Za-z0-9_-]{22}"$`).MatchString(etag) {
				t.Fatalf("ETag %q, want a quoted hash", etag)
			}
			again := get(t, h, http.MethodGet, tt.path, "If-None-Match", etag)
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("with If-None-Match %s: status %d, want 304", etag, again.StatusCode)
			}
			head := get(t, h, http.MethodHead, tt.path)
			if head.StatusCode != http.StatusOK || body(t, head) != "" {
				t.Errorf("HEAD: status %d with a body, want 200 without", head.StatusCode)
			}
		})
	}
}

func TestHandlerRefuses(t *testing.T) {
	h := Handler()
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/nope.js", http.StatusNotFound},
		{http.MethodGet, "/static/app.js", http.StatusNotFound},
		{http.MethodGet, "/v1/people", http.StatusNotFound},
		{http.MethodGet, "/app.js/", http.StatusNotFound},
		{http.MethodGet, "/index.html", http.StatusNotFound},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/app.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := get(t, h, tt.method, tt.path)
			if res.StatusCode != tt.status {
				t.Errorf("status %d, want %d", res.StatusCode, tt.status)
			}
			checkSecurityHeaders(t, res)
			if got := res.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if tt.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", res.Header.Get("Allow"))
			}
		})
	}
}

// TestPageKeepsToItsOrigin reads every embedded file for what the Content
// Security Policy would block, or what would reach outside: an inline
// script or style, an event handler attribute, an address on another
// origin, a module imported from elsewhere.
func TestPageKeepsToItsOrigin(t *testing.T) {
	var (
		inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
		scriptTag    = regexp.MustCompile(`<script(?:\s[^>]*)?>`)
		styleTag     = regexp.MustCompile(`<style[\s>]`)
		attribute    = regexp.MustCompile(`\s(?:on[a-z]+|style)\s*=`)
		reference    = regexp.MustCompile(`(?:src|href|action)\s*=\s*"([^"]*)"`)
		importFrom   = regexp.MustCompile(`(?m)^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']*)'`)
		remote       = regexp.MustCompile(`(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	)
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	served, err := load(static)
	if err != nil {
		t.Fatal(err)
	}
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		text := string(b)
		if strings.HasSuffix(name, ".html") {
			for _, re := range []*regexp.Regexp{inlineScript, styleTag, attribute} {
				if m := re.FindString(text); m != "" {
					t.Errorf("%s: %q would be blocked by the Content Security Policy", name, m)
				}
			}
			for _, tag := range scriptTag.FindAllString(text, -1) {
				if !strings.Contains(tag, " src=") {
					t.Errorf("%s: %s is an inline script, which the Content Security Policy blocks", name, tag)
				}
			}
		}
		refs := reference.FindAllStringSubmatch(text, -1)
		refs = append(refs, importFrom.FindAllStringSubmatch(text, -1)...)
		for _, m := range refs {
			ref := m[1]
			switch {
			case strings.HasPrefix(ref, "#"):
			case strings.HasPrefix(ref, "./"):
				if _, ok := served["/"+strings.TrimPrefix(ref, "./")]; !ok {
					t.Errorf("%s refers to %s, which is not served", name, ref)
				}
			case strings.HasPrefix(ref, "/"):
				if _, ok := served[ref]; !ok {
					t.Errorf("%s refers to %s, which is not served", name, ref)
				}
			default:
				t.Errorf("%s refers to %q, which is not a path on the page's own origin", name, ref)
			}
		}
		for _, m := range remote.FindAllString(text, -1) {
			if m == "http://www.w3.org" && strings.HasSuffix(name, ".svg") {
				continue // the SVG namespace, a name that is never fetched
			}
			t.Errorf("%s names another origin: %s", name, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
