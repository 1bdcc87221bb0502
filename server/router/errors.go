package router

import "fmt"

// FieldError reports a bad request field. The gRPC layer maps it to
// InvalidArgument, or to NotFound when Err wraps models.ErrNotFound, naming
// Field either way.
type FieldError struct {
	// Field is the request field's proto name, e.g. "k" or "item_ids[3]".
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
