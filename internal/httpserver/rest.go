package httpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/routeguide/routeguide/internal/grpcserver"
)

// rest serves the REST resources under /v1/ with next (vanguard, which
// routes by the google.api.http rules of protos/route_guide.proto), and
// gives them the statuses REST callers expect where a gRPC answer has none:
// GetPerson's missing person is 404 (grpcserver.WithNotFoundStatus), a
// create is 201 with a Location, a delete is 204.
func rest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(grpcserver.WithNotFoundStatus(r.Context()))
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/people":
			cw := &createdWriter{ResponseWriter: w}
			next.ServeHTTP(cw, r)
			cw.finish()
		case r.Method == http.MethodDelete:
			next.ServeHTTP(&noContentWriter{ResponseWriter: w}, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// createdWriter holds a successful create's answer, a person of a few KiB,
// to answer it with 201 and the person's Location, which its name gives.
// Failures pass through as they are.
type createdWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer // the 200 answer, held
}

func (cw *createdWriter) WriteHeader(code int) {
	if cw.status != 0 {
		return
	}
	cw.status = code
	if code != http.StatusOK {
		cw.ResponseWriter.WriteHeader(code)
	}
}

func (cw *createdWriter) Write(p []byte) (int, error) {
	cw.WriteHeader(http.StatusOK)
	if cw.status == http.StatusOK {
		return cw.body.Write(p)
	}
	return cw.ResponseWriter.Write(p)
}

// Flush is held back with the answer.
func (cw *createdWriter) Flush() {}

func (cw *createdWriter) finish() {
	if cw.status != http.StatusOK {
		return
	}
	var person struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(cw.body.Bytes(), &person) == nil && person.Name != "" {
		cw.Header().Set("Location", "/v1/people/"+url.PathEscape(person.Name))
	}
	cw.ResponseWriter.WriteHeader(http.StatusCreated)
	cw.ResponseWriter.Write(cw.body.Bytes())
}

// noContentWriter answers a successful delete with 204 and no body.
type noContentWriter struct {
	http.ResponseWriter
	status int
}

func (nw *noContentWriter) WriteHeader(code int) {
	if nw.status != 0 {
		return
	}
	nw.status = code
	if code == http.StatusOK {
		h := nw.Header()
		h.Del("Content-Type")
		h.Del("Content-Length")
		h.Del("Content-Encoding")
		code = http.StatusNoContent
	}
	nw.ResponseWriter.WriteHeader(code)
}

func (nw *noContentWriter) Write(p []byte) (int, error) {
	nw.WriteHeader(http.StatusOK)
	if nw.status == http.StatusOK {
		return len(p), nil // the revision, which 204 does not carry
	}
	return nw.ResponseWriter.Write(p)
}

func (nw *noContentWriter) Flush() {
	if f, ok := nw.ResponseWriter.(http.Flusher); ok && nw.status != 0 {
		f.Flush()
	}
}

// openAPI serves the OpenAPI document.
func openAPI(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
}
