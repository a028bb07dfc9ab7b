package fault

import (
	"errors"
	"testing"
)

func TestErrors(t *testing.T) {
	base := Errorf(Unavailable, "op", "down")
	wrapped := Wrap(Invalid, "outer", errors.New("bad"))
	tests := []struct {
		err       error
		code      Code
		retryable bool
	}{
		{nil, "", false},
		{base, Unavailable, true},
		{wrapped, Invalid, false},
		{errors.New("plain"), Internal, true},
		{Wrap(NotFound, "x", base), NotFound, false},
	}
	for _, tt := range tests {
		if got := ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %v, want %v", tt.err, got, tt.code)
		}
		if got := IsRetryable(tt.err); got != tt.retryable {
			t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
	}
	if got := wrapped.Error(); got != "outer: bad" {
		t.Errorf("Error() = %q", got)
	}
}
