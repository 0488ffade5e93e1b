package schemas

import (
	"encoding/binary"
	"unsafe"
)

// Word-at-a-time scans of the decoder's hot loops: eight bytes are tested
// per step with the classic "has a byte less than n" and "has a zero byte"
// bit tricks, which are exact about whether a word holds a match (only the
// flags above the first match can be spurious), so a flagged word is
// rescanned byte by byte. Decoding spent most of its time in byte loops over
// strings (pprof of BenchmarkDecodeEventShared).

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hasLess flags the bytes of x below n (n <= 128).
func hasLess(x uint64, n byte) uint64 { return (x - ones*uint64(n)) & ^x & highs }

// hasByte flags the bytes of x equal to c.
func hasByte(x uint64, c byte) uint64 {
	y := x ^ ones*uint64(c)
	return (y - ones) & ^y & highs
}

// stringEnd returns the index of the first byte at or after i that ends the
// fast scan of a JSON string (stringStop: '"', '\\' or a control byte), or
// len(b).
func stringEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if hasLess(x, 0x20)|hasByte(x, '"')|hasByte(x, '\\') != 0 {
			break
		}
	}
	for i < len(b) && !stringStop[b[i]] {
		i++
	}
	return i
}

// plainASCII reports whether s is printable ASCII only (0x20-0x7e): then it
// is valid UTF-8 free of control characters, one rune per byte.
func plainASCII(s string) bool {
	b := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if x&highs|hasLess(x, 0x20)|hasByte(x, 0x7f) != 0 {
			return false
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
