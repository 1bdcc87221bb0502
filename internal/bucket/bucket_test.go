package bucket

import (
	"math"
	"strconv"
	"testing"
)

func TestPercentIsStickyAndUniform(t *testing.T) {
	const n = 100_000
	var counts [10]int
	for i := range n {
		key := "user-" + strconv.Itoa(i)
		p := Percent("salt", key)
		if p < 0 || p >= 100 {
			t.Fatalf("Percent(salt, %s) = %v; want [0,100)", key, p)
		}
		if q := Percent("salt", key); q != p {
			t.Fatalf("Percent(salt, %s) = %v then %v; want the same", key, p, q)
		}
		counts[int(p/10)]++
	}
	for i, c := range counts {
		if share := float64(c) / n; math.Abs(share-0.1) > 0.005 {
			t.Errorf("decile %d holds %.4f of keys; want 0.1 ± 0.005", i, share)
		}
	}
}

func TestPercentSaltsAreIndependent(t *testing.T) {
	const n = 20_000
	both := 0
	for i := range n {
		key := strconv.Itoa(i)
		if Percent("a", key) < 50 && Percent("b", key) < 50 {
			both++
		}
	}
	if share := float64(both) / n; math.Abs(share-0.25) > 0.02 {
		t.Errorf("share under 50 for both salts = %.4f; want 0.25 ± 0.02 (independent)", share)
	}
}
