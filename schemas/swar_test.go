package schemas

import (
	"math/rand/v2"
	"testing"
)

// TestWordScans checks the word-at-a-time scans against byte loops on
// random strings rich in the bytes they look for, at every alignment.
func TestWordScans(t *testing.T) {
	alphabet := []byte{'a', 'Z', ' ', '"', '\\', 0x00, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xa8, 0xa9, 0xe2, 0xff, '<', '>', '&', '!', '#', '{'}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			// Mostly plain letters, so that long clean runs occur.
			if rng.IntN(6) == 0 || n%7 == 0 && i%3 > 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(rng.IntN(26))
			}
		}
		for start := 0; start <= len(b); start++ {
			want := start
			for want < len(b) && !stringStop[b[want]] {
				want++
			}
			if got := stringEnd(b, start); got != want {
				t.Fatalf("case %d: stringEnd(%q, %d) = %d, want %d", n, b, start, got, want)
			}
		}
		wantPlain := true
		for _, c := range b {
			if c < 0x20 || c >= 0x7f {
				wantPlain = false
			}
		}
		if got := plainASCII(string(b)); got != wantPlain {
			t.Fatalf("case %d: plainASCII(%q) = %v, want %v", n, b, got, wantPlain)
		}
		var wantEsc, wantASCII = false, true
		for i, c := range b {
			switch {
			case c == '<' || c == '>' || c == '&':
				wantEsc = true
			case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8:
				wantEsc, wantASCII = true, false
			case c >= 0x80:
				wantASCII = false
			}
		}
		if esc, ascii := rawEscapes(b); esc != wantEsc || ascii != wantASCII {
			t.Fatalf("case %d: rawEscapes(%q) = %v, %v, want %v, %v", n, b, esc, ascii, wantEsc, wantASCII)
		}
	}
}
