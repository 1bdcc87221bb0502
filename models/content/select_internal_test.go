package content

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSelectHeaviest compares quickselect with a full sort on random inputs,
// ties of weight included.
func TestSelectHeaviest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n < 300; n += 1 + n/8 {
		for _, levels := range []int{2, 10, 1 << 20} {
			a := make([]termWeight, n)
			for i, p := range r.Perm(n) {
				a[i] = termWeight{w: float64(r.IntN(levels)), t: int32(p)}
			}
			want := slices.Clone(a)
			slices.SortFunc(want, func(x, y termWeight) int {
				if heavier(x, y) {
					return -1
				}
				return 1
			})
			for _, k := range []int{1, n / 3, n / 2, n} {
				if k == 0 {
					continue
				}
				got := slices.Clone(a)
				selectHeaviest(got, k)
				top := slices.Clone(got[:k])
				slices.SortFunc(top, func(x, y termWeight) int {
					if heavier(x, y) {
						return -1
					}
					return 1
				})
				if !slices.Equal(top, want[:k]) {
					t.Fatalf("selectHeaviest(n=%d, levels=%d, k=%d)[:k] = %v; want %v", n, levels, k, top, want[:k])
				}
			}
		}
	}
}

func TestBucket(t *testing.T) {
	tests := []struct {
		x    float32
		want int
	}{{0, 0}, {1e-30, 0}, {1.0 / 1024, 1}, {0.5, 512}, {0.999, 1022}, {1, 1023}, {1.0000001, 1023}, {2, 1023}}
	for _, tt := range tests {
		if got := bucket(tt.x); got != tt.want {
			t.Errorf("bucket(%v) = %d; want %d", tt.x, got, tt.want)
		}
	}
}
