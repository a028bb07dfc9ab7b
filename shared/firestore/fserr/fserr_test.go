package fserr

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/governor"
)

func TestWrap(t *testing.T) {
	tests := []struct {
		err  error
		want governor.Code
	}{
		{status.Error(codes.Aborted, "contention"), governor.Unavailable},
		{status.Error(codes.Unavailable, "down"), governor.Unavailable},
		{status.Error(codes.NotFound, "gone"), governor.NotFound},
		{status.Error(codes.AlreadyExists, "dup"), governor.Conflict},
		{status.Error(codes.InvalidArgument, "bad"), governor.Invalid},
		{status.Error(codes.PermissionDenied, "no"), governor.Internal},
		{context.DeadlineExceeded, governor.Unavailable},
		{governor.Errorf(governor.NotFound, "x", "kept"), governor.NotFound},
		{errors.New("other"), governor.Internal},
	}
	for _, tt := range tests {
		if got := governor.ErrorCode(Wrap("op", tt.err)); got != tt.want {
			t.Errorf("Wrap(%v) code = %s, want %s", tt.err, got, tt.want)
		}
	}
	if Wrap("op", nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
}
