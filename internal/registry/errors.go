package registry

import (
	"errors"
	"fmt"
)

// Domain errors. Each names one way a request can be wrong; the HTTP layer
// maps them to the distribution spec's error codes in one table. Wrap them
// with Errorf to add a message and detail.
var (
	ErrNameInvalid          = errors.New("invalid repository name")
	ErrNameUnknown          = errors.New("repository name not known to registry")
	ErrTagInvalid           = errors.New("invalid tag")
	ErrBlobUnknown          = errors.New("blob unknown to registry")
	ErrUploadUnknown        = errors.New("blob upload unknown to registry")
	ErrUploadInvalid        = errors.New("blob upload invalid")
	ErrRangeInvalid         = errors.New("requested range not satisfiable")
	ErrDigestInvalid        = errors.New("provided digest did not match uploaded content")
	ErrManifestUnknown      = errors.New("manifest unknown")
	ErrManifestInvalid      = errors.New("manifest invalid")
	ErrManifestBlobUnknown  = errors.New("manifest references a blob unknown to the repository")
	ErrManifestChildMissing = errors.New("index references a manifest unknown to the repository")
	ErrManifestTooLarge     = errors.New("manifest too large")
	ErrSizeInvalid          = errors.New("provided length did not match content length")
	ErrUnsupported          = errors.New("the operation is unsupported")
	ErrNotAcceptable        = errors.New("manifest media type not acceptable")
	ErrDenied               = errors.New("requested access to the resource is denied")
	ErrPolicyInvalid        = errors.New("invalid policy")
	ErrPolicyUnknown        = errors.New("no such policy")
	ErrGoldenBaseRequired   = errors.New("image not built on a golden image")
)

// Error is a domain error with a message for people and optional detail
// for programs. errors.Is(err, ErrX) holds for the Kind it wraps.
type Error struct {
	Kind    error
	Message string
	Detail  any
	// Offset is the upload's committed length, for range errors.
	Offset int64
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// withDetail returns e with Detail set.
func (e *Error) withDetail(detail any) *Error {
	e.Detail = detail
	return e
}
