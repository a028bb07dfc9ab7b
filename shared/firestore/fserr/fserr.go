// Package fserr maps errors of the Firestore client to the error codes of
// Autonomics, for every Firestore adapter: contention and outages are
// Unavailable (retried), a missing document NotFound, an existing one
// Conflict, a refused argument Invalid, the rest Internal.
package fserr

import (
	"context"
	"errors"

	"github.com/autonomics/autonomics/shared/fault"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Wrap returns err as a governor error of operation op with the code its
// gRPC status implies. Errors that already carry a code keep it; nil stays
// nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *fault.Error
	if errors.As(err, &ge) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Wrap(fault.Unavailable, op, err)
	}
	code := fault.Internal
	switch status.Code(err) {
	case codes.Aborted, codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		code = fault.Unavailable
	case codes.InvalidArgument:
		code = fault.Invalid
	case codes.NotFound:
		code = fault.NotFound
	case codes.AlreadyExists:
		code = fault.Conflict
	}
	return fault.Wrap(code, op, err)
}
