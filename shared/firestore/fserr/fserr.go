// Package fserr maps errors of the Firestore client to the error codes of
// Autonomics, for every Firestore adapter: contention and outages are
// Unavailable (retried), a missing document NotFound, an existing one
// Conflict, a refused argument Invalid, the rest Internal.
package fserr

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/governor"
)

// Wrap returns err as a governor error of operation op with the code its
// gRPC status implies. Errors that already carry a code keep it; nil stays
// nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var ge *governor.Error
	if errors.As(err, &ge) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return governor.Wrap(governor.Unavailable, op, err)
	}
	code := governor.Internal
	switch status.Code(err) {
	case codes.Aborted, codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled:
		code = governor.Unavailable
	case codes.InvalidArgument:
		code = governor.Invalid
	case codes.NotFound:
		code = governor.NotFound
	case codes.AlreadyExists:
		code = governor.Conflict
	}
	return governor.Wrap(code, op, err)
}
