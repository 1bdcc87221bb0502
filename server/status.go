package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/store"
)

// toStatus maps a domain error to a gRPC status, in one place: bad fields
// become InvalidArgument (or NotFound) with a BadRequest detail naming the
// field, context errors pass through as their codes, and anything unexpected
// becomes Internal with the cause logged rather than sent. Model lifecycle
// errors: an invalid name or a rejected version is InvalidArgument (the
// message says why), an upload over the limits ResourceExhausted, an
// existing version AlreadyExists, nothing to roll back to
// FailedPrecondition.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var code codes.Code
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, errLoading), errors.Is(err, store.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, errNoStateStore), errors.Is(err, store.ErrNoImpressions):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, models.ErrOverloaded):
		return status.Error(codes.ResourceExhausted, err.Error())
	// Lifecycle errors come before the model errors: a rejected version may
	// wrap the load error that rejected it.
	case errors.Is(err, repository.ErrRejected):
		code = codes.InvalidArgument
	case errors.Is(err, repository.ErrInvalidName):
		code = codes.InvalidArgument
	case errors.Is(err, repository.ErrTooLarge):
		code = codes.ResourceExhausted
	case errors.Is(err, repository.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, repository.ErrNoRollback), errors.Is(err, repository.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, models.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, models.ErrNotReady):
		code = codes.FailedPrecondition
	case errors.Is(err, models.ErrUnsupported):
		code = codes.FailedPrecondition
	}
	var fe *models.FieldError
	if errors.As(err, &fe) {
		if code == codes.OK {
			code = codes.InvalidArgument
		}
		st := status.New(code, err.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: fe.Field, Description: fe.Err.Error()},
		}}); derr == nil {
			st = d
		}
		return st.Err()
	}
	if code != codes.OK {
		return status.Error(code, err.Error())
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}
