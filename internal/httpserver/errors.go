package httpserver

import (
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// httpStatus is Google's mapping of gRPC codes to HTTP statuses
// (google.rpc.Code's comments), the one vanguard applies to REST errors:
// the errors this package writes itself (the guards', the watch feed's
// before it starts) answer as the REST routes do.
var httpStatus = [...]int{
	codes.OK:                 http.StatusOK,
	codes.Canceled:           499,
	codes.Unknown:            http.StatusInternalServerError,
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.DeadlineExceeded:   http.StatusGatewayTimeout,
	codes.NotFound:           http.StatusNotFound,
	codes.AlreadyExists:      http.StatusConflict,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.ResourceExhausted:  http.StatusTooManyRequests,
	codes.FailedPrecondition: http.StatusBadRequest,
	codes.Aborted:            http.StatusConflict,
	codes.OutOfRange:         http.StatusBadRequest,
	codes.Unimplemented:      http.StatusNotImplemented,
	codes.Internal:           http.StatusInternalServerError,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.DataLoss:           http.StatusInternalServerError,
	codes.Unauthenticated:    http.StatusUnauthorized,
}

// statusOf returns the HTTP status for code.
func statusOf(code codes.Code) int {
	if int(code) < len(httpStatus) {
		return httpStatus[code]
	}
	return http.StatusInternalServerError
}

// writeStatus answers st as the REST routes answer an error: its HTTP
// status, and a google.rpc.Status as JSON.
func writeStatus(w http.ResponseWriter, st *status.Status) {
	writeStatusCode(w, statusOf(st.Code()), st)
}

// writeStatusCode answers st with the HTTP status code.
func writeStatusCode(w http.ResponseWriter, code int, st *status.Status) {
	body, err := statusJSON(st)
	if err != nil {
		http.Error(w, st.Message(), code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// statusJSON is st as a google.rpc.Status in protojson, on one line.
func statusJSON(st *status.Status) ([]byte, error) {
	return protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(st.Proto())
}
