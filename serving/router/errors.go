package router

import "github.com/recserve/recserve/models"

// fieldErr reports a bad request field as a *models.FieldError, the one
// bad-input error the gRPC layer maps to a status.
func fieldErr(field, format string, args ...any) error {
	return models.NewFieldError(field, format, args...)
}
