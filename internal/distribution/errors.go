package distribution

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/wharf/wharf/internal/registry"
)

// Code is one of the distribution spec's error codes with its usual status.
type Code struct {
	Name   string
	Status int
}

// The spec's error codes, each declared once.
var (
	CodeBlobUnknown         = Code{"BLOB_UNKNOWN", http.StatusNotFound}
	CodeBlobUploadInvalid   = Code{"BLOB_UPLOAD_INVALID", http.StatusBadRequest}
	CodeBlobUploadUnknown   = Code{"BLOB_UPLOAD_UNKNOWN", http.StatusNotFound}
	CodeDigestInvalid       = Code{"DIGEST_INVALID", http.StatusBadRequest}
	CodeManifestBlobUnknown = Code{"MANIFEST_BLOB_UNKNOWN", http.StatusBadRequest}
	CodeManifestInvalid     = Code{"MANIFEST_INVALID", http.StatusBadRequest}
	CodeManifestUnknown     = Code{"MANIFEST_UNKNOWN", http.StatusNotFound}
	CodeNameInvalid         = Code{"NAME_INVALID", http.StatusBadRequest}
	CodeNameUnknown         = Code{"NAME_UNKNOWN", http.StatusNotFound}
	CodeSizeInvalid         = Code{"SIZE_INVALID", http.StatusBadRequest}
	CodeUnauthorized        = Code{"UNAUTHORIZED", http.StatusUnauthorized}
	CodeDenied              = Code{"DENIED", http.StatusForbidden}
	CodeUnsupported         = Code{"UNSUPPORTED", http.StatusMethodNotAllowed}
	CodeTooManyRequests     = Code{"TOOMANYREQUESTS", http.StatusTooManyRequests}
	CodePaginationInvalid   = Code{"PAGINATION_NUMBER_INVALID", http.StatusBadRequest}
	CodeUnknown             = Code{"UNKNOWN", http.StatusInternalServerError}
)

// domainCodes translates domain errors to wire errors; a status other than
// the code's own is given where the spec asks for one.
var domainCodes = []struct {
	kind   error
	code   Code
	status int
}{
	{registry.ErrNameInvalid, CodeNameInvalid, 0},
	{registry.ErrNameUnknown, CodeNameUnknown, 0},
	{registry.ErrTagInvalid, CodeManifestInvalid, 0},
	{registry.ErrBlobUnknown, CodeBlobUnknown, 0},
	{registry.ErrUploadUnknown, CodeBlobUploadUnknown, 0},
	{registry.ErrUploadInvalid, CodeBlobUploadInvalid, 0},
	{registry.ErrRangeInvalid, CodeBlobUploadInvalid, http.StatusRequestedRangeNotSatisfiable},
	{registry.ErrDigestInvalid, CodeDigestInvalid, 0},
	{registry.ErrManifestUnknown, CodeManifestUnknown, 0},
	{registry.ErrManifestInvalid, CodeManifestInvalid, 0},
	{registry.ErrManifestBlobUnknown, CodeManifestBlobUnknown, 0},
	{registry.ErrManifestChildMissing, CodeManifestUnknown, http.StatusBadRequest},
	{registry.ErrManifestTooLarge, CodeSizeInvalid, http.StatusRequestEntityTooLarge},
	{registry.ErrSizeInvalid, CodeSizeInvalid, 0},
	{registry.ErrUnsupported, CodeUnsupported, 0},
	{registry.ErrNotAcceptable, CodeManifestUnknown, 0},
	{registry.ErrDenied, CodeDenied, 0},
	{registry.ErrGoldenBaseRequired, CodeDenied, 0},
}

// Error is a wire error: a code, a message, optional detail and status.
type Error struct {
	Code    Code
	Message string
	Detail  any
	Status  int
}

func (e *Error) Error() string { return e.Code.Name + ": " + e.Message }

// NewError returns a wire error with the code's status.
func NewError(code Code, message string) *Error {
	return &Error{Code: code, Message: message, Status: code.Status}
}

type wireError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// translate maps any error to a wire error. Unknown errors become a generic
// UNKNOWN: their text may leak internals, so it goes to the log instead.
func translate(err error) (*Error, bool) {
	var we *Error
	if errors.As(err, &we) {
		if we.Status == 0 {
			we.Status = we.Code.Status
		}
		return we, true
	}
	var de *registry.Error
	errors.As(err, &de)
	for _, dc := range domainCodes {
		if errors.Is(err, dc.kind) {
			out := &Error{Code: dc.code, Status: dc.code.Status, Message: err.Error()}
			if dc.status != 0 {
				out.Status = dc.status
			}
			if de != nil {
				out.Message = de.Error()
				out.Detail = de.Detail
			}
			return out, true
		}
	}
	return &Error{Code: CodeUnknown, Status: CodeUnknown.Status, Message: "internal server error"}, false
}

// WriteError writes err in the spec's error format. Unexpected errors are
// logged with the request's context (which carries its id).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	we, known := translate(err)
	if !known {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body, _ := json.Marshal(struct {
		Errors []wireError `json:"errors"`
	}{[]wireError{{Code: we.Code.Name, Message: we.Message, Detail: we.Detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(we.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
