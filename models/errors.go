package models

import (
	"errors"
	"fmt"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrNotFound reports an unknown model, version, item or user.
	ErrNotFound = errors.New("not found")
	// ErrNotReady reports a model that exists but has no loaded version.
	ErrNotReady = errors.New("not ready")
	// ErrUnsupported reports a model asked for a role it does not have, such as
	// Score on a recommender-only model.
	ErrUnsupported = errors.New("unsupported")
	// ErrOverloaded reports a model whose request queue is full (a batching
	// ONNX model under more load than it can run): the request was not
	// attempted and may be retried later. The server maps it to
	// ResourceExhausted.
	ErrOverloaded = errors.New("the model's queue is full: retry later")
)

// FieldError names the input at fault: a request field ("k",
// "item_ids[3]", "filters.price_max") or an argument of a repository call
// ("name", "version", "path"). It is the one error type for bad input across
// the serving core, so the gRPC layer maps it to InvalidArgument (NotFound
// when Err wraps ErrNotFound) with a detail naming Field, in one place.
type FieldError struct {
	// Field is the input's name, in the request's proto naming where there
	// is a request.
	Field string
	Err   error
}

// NewFieldError returns a FieldError for field with a formatted cause.
func NewFieldError(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

// Within places a FieldError of err under prefix (an argument "path" of an
// upload becomes the request field "chunk.path" with prefix "chunk."); other
// errors are returned unchanged.
func Within(prefix string, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return err
	}
	return &FieldError{Field: prefix + fe.Field, Err: fe.Err}
}
