// Package exact holds the integer arithmetic the governors' guards share:
// comparisons of products that cannot overflow.
package exact

import "math/bits"

// CmpMul compares a×b with c×d for non-negative a, b, c, d, exactly, in
// 128 bits: it returns -1, 0 or +1.
func CmpMul(a, b, c, d int64) int {
	h1, l1 := bits.Mul64(uint64(a), uint64(b))
	h2, l2 := bits.Mul64(uint64(c), uint64(d))
	switch {
	case h1 < h2 || h1 == h2 && l1 < l2:
		return -1
	case h1 > h2 || l1 > l2:
		return 1
	}
	return 0
}
