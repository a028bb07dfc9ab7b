package fserr

import (
	"context"
	"errors"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		err  error
		want fault.Code
	}{
		{status.Error(codes.Aborted, "contention"), fault.Unavailable},
		{status.Error(codes.Unavailable, "down"), fault.Unavailable},
		{status.Error(codes.NotFound, "gone"), fault.NotFound},
		{status.Error(codes.AlreadyExists, "dup"), fault.Conflict},
		{status.Error(codes.InvalidArgument, "bad"), fault.Invalid},
		{status.Error(codes.PermissionDenied, "no"), fault.Internal},
		{context.DeadlineExceeded, fault.Unavailable},
		{fault.Errorf(fault.NotFound, "x", "kept"), fault.NotFound},
		{errors.New("other"), fault.Internal},
	}
	for _, tt := range tests {
		if got := fault.ErrorCode(Wrap("op", tt.err)); got != tt.want {
			t.Errorf("Wrap(%v) code = %s, want %s", tt.err, got, tt.want)
		}
	}
	if Wrap("op", nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
}
