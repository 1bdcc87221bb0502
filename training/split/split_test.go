package split

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
)

// synthetic returns a data set whose interaction i has Value i, so halves can
// be traced back to the input. Users have 1..maxN interactions with
// timestamps drawn from a small range, so ties occur.
func synthetic(seed uint64, users, maxN int) *dataset.Dataset {
	r := rand.New(rand.NewPCG(seed, 1))
	d := &dataset.Dataset{
		Items: []dataset.Item{{ID: "i1", Price: math.NaN()}, {ID: "i2", Price: 3}},
		Users: []dataset.User{{ID: "u0", Attrs: map[string]string{"age": "30"}}},
	}
	for u := range users {
		n := 1 + r.IntN(maxN)
		for range n {
			d.Interactions = append(d.Interactions, dataset.Interaction{
				UserID:    fmt.Sprintf("u%d", u),
				ItemID:    fmt.Sprintf("i%d", r.IntN(50)),
				Event:     dataset.View,
				Timestamp: int64(r.IntN(20)),
			})
		}
	}
	r.Shuffle(len(d.Interactions), func(i, j int) {
		d.Interactions[i], d.Interactions[j] = d.Interactions[j], d.Interactions[i]
	})
	for i := range d.Interactions {
		d.Interactions[i].Value = float64(i)
	}
	return d
}

// tags returns the Value tags of ins.
func tags(ins []dataset.Interaction) []int {
	out := make([]int, len(ins))
	for i, in := range ins {
		out[i] = int(in.Value)
	}
	return out
}

func TestSplitInvariants(t *testing.T) {
	d := synthetic(7, 300, 25)
	for _, m := range []Method{Time, Random, ""} {
		for _, frac := range []float64{0.1, 0.2, 0.5, 0.9} {
			for _, minTrain := range []int{0, 1, 3} {
				opt := Options{Method: m, TestFrac: frac, Seed: 42, MinTrain: minTrain}
				train, test, err := Split(d, opt)
				if err != nil {
					t.Fatalf("Split(%+v) = %v; want nil error", opt, err)
				}
				checkSplit(t, d, train, test, opt)
			}
		}
	}
}

// checkSplit verifies that train and test partition d, keep d's order, hold
// the expected number of test events per user and, for Time, never put a
// test event before one of the same user's train events.
func checkSplit(t *testing.T, d, train, test *dataset.Dataset, opt Options) {
	t.Helper()
	tr, te := tags(train.Interactions), tags(test.Interactions)
	if !slices.IsSorted(tr) || !slices.IsSorted(te) {
		t.Errorf("Split(%+v): halves not in input order", opt)
	}
	all := slices.Concat(tr, te)
	slices.Sort(all)
	for i, v := range all {
		if v != i {
			t.Fatalf("Split(%+v): merged halves [%d] = %d; want %d (lost or duplicated interaction)", opt, i, v, i)
		}
	}
	minTrain := max(opt.MinTrain, 1)
	count := func(ins []dataset.Interaction) map[string]int {
		m := make(map[string]int)
		for _, in := range ins {
			m[in.UserID]++
		}
		return m
	}
	total, nTest := count(d.Interactions), count(test.Interactions)
	for u, n := range total {
		want := max(0, min(int(math.Ceil(opt.TestFrac*float64(n)-1e-9)), n-minTrain))
		if nTest[u] != want {
			t.Errorf("Split(%+v): user %s with %d events has %d test events; want %d", opt, u, n, nTest[u], want)
		}
	}
	if opt.Method != Random {
		latestTrain := make(map[string]int64)
		for _, in := range train.Interactions {
			latestTrain[in.UserID] = max(latestTrain[in.UserID], in.Timestamp)
		}
		for _, in := range test.Interactions {
			if l, ok := latestTrain[in.UserID]; ok && in.Timestamp < l {
				t.Errorf("Split(%+v): user %s test event at %d precedes a train event at %d", opt, in.UserID, in.Timestamp, l)
			}
		}
	}
	for _, h := range []*dataset.Dataset{train, test} {
		if len(h.Items) != len(d.Items) || len(h.Users) != len(d.Users) {
			t.Errorf("Split(%+v): half has %d items, %d users; want %d, %d", opt, len(h.Items), len(h.Users), len(d.Items), len(d.Users))
		}
	}
}

func TestSplitTimeExact(t *testing.T) {
	in := []dataset.Interaction{
		{UserID: "a", ItemID: "1", Timestamp: 30},
		{UserID: "b", ItemID: "1", Timestamp: 5},
		{UserID: "a", ItemID: "2", Timestamp: 10},
		{UserID: "a", ItemID: "3", Timestamp: 20},
		{UserID: "c", ItemID: "9", Timestamp: 1}, // single event: train only
		{UserID: "a", ItemID: "4", Timestamp: 20},
		{UserID: "b", ItemID: "2", Timestamp: 6},
	}
	d := &dataset.Dataset{Interactions: in}
	train, test, err := Split(d, Options{Method: Time, TestFrac: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ins []dataset.Interaction) string {
		var s []string
		for _, in := range ins {
			s = append(s, in.UserID+in.ItemID)
		}
		return strings.Join(s, " ")
	}
	// a: 4 events by time 2(10) 3(20) 4(20) 1(30); test = last 2 = 4, 1 (ties
	// broken by file order, so 3 stays in train). b: 1(5) 2(6); test = 2.
	if got, want := ids(train.Interactions), "b1 a2 a3 c9"; got != want {
		t.Errorf("Split(time, 0.5) train = %s; want %s", got, want)
	}
	if got, want := ids(test.Interactions), "a1 a4 b2"; got != want {
		t.Errorf("Split(time, 0.5) test = %s; want %s", got, want)
	}
	if d.Interactions[0] != in[0] || len(d.Interactions) != len(in) {
		t.Errorf("Split modified its input")
	}
}

func TestSplitDeterministic(t *testing.T) {
	d := synthetic(3, 200, 15)
	for _, m := range []Method{Time, Random} {
		opt := Options{Method: m, TestFrac: 0.3, Seed: 9}
		_, test1, err := Split(d, opt)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, test2, _ := Split(d, opt)
			if a, b := tags(test1.Interactions), tags(test2.Interactions); !slices.Equal(a, b) {
				t.Fatalf("Split(%+v) twice: test sets differ", opt)
			}
		}

		// Reordering users relative to each other (each user's own order kept)
		// and adding another user must not change anyone's held-out events.
		moved := &dataset.Dataset{}
		for _, in := range d.Interactions {
			if in.UserID != "u0" {
				moved.Interactions = append(moved.Interactions, in)
			}
		}
		for _, in := range d.Interactions {
			if in.UserID == "u0" {
				moved.Interactions = append(moved.Interactions, in)
			}
		}
		for i := range 5 {
			moved.Interactions = append(moved.Interactions, dataset.Interaction{UserID: "new", ItemID: "x", Timestamp: int64(i), Value: float64(-1 - i)})
		}
		_, test3, _ := Split(moved, opt)
		var got []int
		for _, v := range tags(test3.Interactions) {
			if v >= 0 {
				got = append(got, v)
			}
		}
		slices.Sort(got)
		if want := tags(test1.Interactions); !slices.Equal(got, want) {
			t.Errorf("Split(%+v) after reordering users: test set changed", opt)
		}
	}

	// A different seed gives a different random split.
	_, a, _ := Split(d, Options{Method: Random, TestFrac: 0.3, Seed: 1})
	_, b, _ := Split(d, Options{Method: Random, TestFrac: 0.3, Seed: 2})
	if slices.Equal(tags(a.Interactions), tags(b.Interactions)) {
		t.Errorf("Split(random, seed 1) = Split(random, seed 2); want different test sets")
	}
}

func TestSplitRandomIsUniform(t *testing.T) {
	// One user with 10 events, 1 held out: over many seeds each event should
	// be chosen about 1/10 of the time.
	d := &dataset.Dataset{}
	for i := range 10 {
		d.Interactions = append(d.Interactions, dataset.Interaction{UserID: "u", ItemID: "i", Value: float64(i)})
	}
	counts := make([]int, 10)
	const runs = 5000
	for s := range runs {
		_, test, err := Split(d, Options{Method: Random, TestFrac: 0.1, Seed: int64(s)})
		if err != nil || len(test.Interactions) != 1 {
			t.Fatalf("Split(seed %d) = %v, %d test events; want nil, 1", s, err, len(test.Interactions))
		}
		counts[int(test.Interactions[0].Value)]++
	}
	for i, c := range counts {
		if c < runs/10*7/10 || c > runs/10*13/10 {
			t.Errorf("event %d held out %d times in %d runs; want about %d", i, c, runs, runs/10)
		}
	}
}

func TestSplitErrors(t *testing.T) {
	d := &dataset.Dataset{}
	tests := []struct {
		d    *dataset.Dataset
		opt  Options
		want string
	}{
		{nil, Options{TestFrac: 0.2}, "nil dataset"},
		{d, Options{Method: "leave-one-out", TestFrac: 0.2}, `unknown method "leave-one-out"`},
		{d, Options{TestFrac: 0}, "must be in (0, 1)"},
		{d, Options{TestFrac: 1}, "must be in (0, 1)"},
		{d, Options{TestFrac: -0.5}, "must be in (0, 1)"},
		{d, Options{TestFrac: math.NaN()}, "must be in (0, 1)"},
		{d, Options{TestFrac: 0.2, MinTrain: -1}, "must not be negative"},
	}
	for _, tt := range tests {
		_, _, err := Split(tt.d, tt.opt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Split(%+v) = %v; want error containing %q", tt.opt, err, tt.want)
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	for _, users := range []int{1_000, 100_000} {
		d := synthetic(1, users, 20)
		for _, m := range []Method{Time, Random} {
			b.Run(fmt.Sprintf("%s/%d", m, len(d.Interactions)), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := Split(d, Options{Method: m, TestFrac: 0.2, Seed: 1}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
