package exact

import (
	"math"
	"testing"
)

func TestCmpMul(t *testing.T) {
	tests := []struct {
		a, b, c, d int64
		want       int
	}{
		{2, 3, 3, 2, 0},
		{2, 3, 1, 7, -1},
		{1, 7, 2, 3, 1},
		{math.MaxInt64, 100, math.MaxInt64, 99, 1},   // both overflow 64 bits
		{math.MaxInt64, 2, math.MaxInt64 - 1, 2, 1},  // high words equal
		{math.MaxInt64 - 1, 2, math.MaxInt64, 2, -1}, // low words differ
		{0, math.MaxInt64, 0, 1, 0},
	}
	for _, tt := range tests {
		if got := CmpMul(tt.a, tt.b, tt.c, tt.d); got != tt.want {
			t.Errorf("CmpMul(%d, %d, %d, %d) = %d, want %d", tt.a, tt.b, tt.c, tt.d, got, tt.want)
		}
	}
}
