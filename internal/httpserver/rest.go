package httpserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/routeguide/routeguide/internal/grpcserver"
)

// rest serves the REST resources under /v1/ with next (vanguard, which
// routes by the google.api.http rules of protos/route_guide.proto), and
// gives them the statuses and headers REST callers expect where a gRPC
// answer has none: GetPerson's missing person is 404
// (grpcserver.WithNotFoundStatus), a create is 201 with a Location, a
// delete is 204; a person's answer carries its ETag, a PATCH or DELETE
// takes If-Match, and a stale one is 412 (restWriter).
func rest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(grpcserver.WithETagHeader(grpcserver.WithNotFoundStatus(r.Context())))
		if r.Method == http.MethodPatch || r.Method == http.MethodDelete {
			if st := ifMatch(r); st != nil {
				writeStatus(w, st)
				return
			}
		}
		rw := &restWriter{ResponseWriter: w}
		defer rw.finish()
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/people":
			cw := &createdWriter{ResponseWriter: rw}
			next.ServeHTTP(cw, r)
			cw.finish()
		case r.Method == http.MethodDelete:
			next.ServeHTTP(&noContentWriter{ResponseWriter: rw}, r)
		default:
			next.ServeHTTP(rw, r)
		}
	})
}

// ifMatch moves r's If-Match header into the etag field of the request
// (its etag query parameter, which vanguard reads into UpdatePersonRequest
// and DeletePersonRequest), so that the write is conditional on it. "*"
// or no header leaves the write unconditional. It returns
// INVALID_ARGUMENT when the header is not one strong entity tag or "*"
// (the etag field holds one etag, and a weak one never matches under
// If-Match's strong comparison, RFC 9110 13.1.1), or when it and the etag
// parameter name different etags.
func ifMatch(r *http.Request) *status.Status {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return nil
	}
	r.Header.Del("If-Match")
	v := strings.TrimSpace(strings.Join(values, ","))
	if v == "*" {
		return nil
	}
	etag, ok := strongETag(v)
	if !ok {
		return status.Newf(codes.InvalidArgument, "If-Match %q: give one strong etag, quoted as the ETag header gives it, or *", v)
	}
	q := r.URL.Query()
	if q.Has("etag") {
		if q.Get("etag") != etag {
			return status.Newf(codes.InvalidArgument, "If-Match %q and the etag parameter %q differ", v, q.Get("etag"))
		}
		return nil
	}
	if r.URL.RawQuery != "" {
		r.URL.RawQuery += "&"
	}
	r.URL.RawQuery += "etag=" + url.QueryEscape(etag)
	return nil
}

// strongETag returns the opaque tag of v when v is one strong entity tag,
// a quoted string of RFC 9110's etagc characters. net/http's own parser of
// entity tags (scanETag, for ServeContent) is not exported.
func strongETag(v string) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	tag := v[1 : len(v)-1]
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; c == '"' || c < 0x21 || c == 0x7f {
			return "", false
		}
	}
	return tag, true
}

// restWriter gives a REST answer the headers and status HTTP callers
// expect of a person's etag: the service's etag response header (GetPerson
// sends it, and AddPerson and UpdatePerson under grpcserver.WithETagHeader)
// becomes a quoted strong ETag on a success, and is dropped from an error;
// an ABORTED answer, which RouteGuide gives only when a write's etag is no
// longer the person's, is 412 Precondition Failed rather than Google's
// 409, since that is what a failed If-Match answers in HTTP. To tell
// ABORTED from ALREADY_EXISTS, a 409 answer, a google.rpc.Status of a few
// hundred bytes, is held until it is complete.
type restWriter struct {
	http.ResponseWriter
	status   int
	conflict bytes.Buffer // a 409 answer, held
}

func (rw *restWriter) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	rw.status = code
	h := rw.Header()
	if etag := h.Get(etagHeader); etag != "" && code < 300 {
		h.Set(etagHeader, `"`+etag+`"`)
	} else {
		h.Del(etagHeader)
	}
	if code != http.StatusConflict {
		rw.ResponseWriter.WriteHeader(code)
	}
}

func (rw *restWriter) Write(p []byte) (int, error) {
	rw.WriteHeader(http.StatusOK)
	if rw.status == http.StatusConflict {
		return rw.conflict.Write(p)
	}
	return rw.ResponseWriter.Write(p)
}

func (rw *restWriter) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok && rw.status != 0 && rw.status != http.StatusConflict {
		f.Flush()
	}
}

// finish sends a held 409 answer, as 412 when it is ABORTED.
func (rw *restWriter) finish() {
	if rw.status != http.StatusConflict {
		return
	}
	code := http.StatusConflict
	var st struct {
		Code codes.Code `json:"code"`
	}
	if json.Unmarshal(rw.conflict.Bytes(), &st) == nil && st.Code == codes.Aborted {
		code = http.StatusPreconditionFailed
	}
	rw.Header().Del("Content-Length")
	rw.ResponseWriter.WriteHeader(code)
	rw.ResponseWriter.Write(rw.conflict.Bytes())
}

// etagHeader is the header a person's etag is answered in: the service's
// etag response metadata, and HTTP's ETag.
const etagHeader = "ETag"

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
