// Package split divides a data set into train and test halves for offline
// evaluation. The split is per user, so every user with enough history is
// represented in both halves, which is what top-k recommendation metrics
// (recall@k, NDCG@k per user) need.
//
// Splits are deterministic: the same data set, options and seed give the same
// halves on every run and platform, independent of map iteration order and of
// the order other users appear in. Split is safe to call concurrently.
package split

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/recserve/recserve/dataset"
)

// Method chooses which of a user's interactions are held out.
type Method string

// Split methods.
const (
	// Time holds out each user's latest interactions: it mimics production,
	// where a model trained on the past predicts the future, and is the
	// default.
	Time Method = "time"
	// Random holds out a seeded random subset of each user's interactions,
	// for data sets without meaningful timestamps.
	Random Method = "random"
)

// Options configures Split.
type Options struct {
	// Method is Time or Random; empty means Time.
	Method Method
	// TestFrac is the fraction of each user's interactions held out, in
	// (0, 1). The count is rounded up, so every user who can spare one
	// interaction contributes at least one test event.
	TestFrac float64
	// Seed drives Random; Time ignores it.
	Seed int64
	// MinTrain is the number of interactions every user keeps in train; users
	// with no more than MinTrain interactions go entirely to train, since a
	// test event without train history cannot be evaluated. Zero means 1.
	MinTrain int
}

// epsilon absorbs floating-point error in TestFrac*n, so that 0.7*10 holds
// out 7 rather than ceil(7.000000000000001) = 8.
const epsilon = 1e-9

// validate checks opt and fills in defaults.
func (opt Options) validate() (Options, error) {
	switch opt.Method {
	case "":
		opt.Method = Time
	case Time, Random:
	default:
		return opt, fmt.Errorf("split: unknown method %q (want %q or %q)", opt.Method, Time, Random)
	}
	if !(opt.TestFrac > 0 && opt.TestFrac < 1) { // also rejects NaN
		return opt, fmt.Errorf("split: test fraction %v must be in (0, 1)", opt.TestFrac)
	}
	if opt.MinTrain < 0 {
		return opt, fmt.Errorf("split: min train %d must not be negative", opt.MinTrain)
	}
	if opt.MinTrain == 0 {
		opt.MinTrain = 1
	}
	return opt, nil
}

// Split divides d's interactions per user into train and test. For each user
// with n interactions, min(ceil(TestFrac*n), n-MinTrain) of them go to test
// (none if that is not positive): with Time the latest ones (ties in
// timestamp broken by file order, so a test event is never earlier than any of
// the user's train events); with Random a uniformly chosen subset drawn from
// a generator seeded by Seed and the user id.
//
// Each half keeps the interactions in d's order, and both carry all of d's
// Items and Users (the slices are copied; User.Attrs maps are shared). Every
// interaction of d is in exactly one half. d is not modified.
func Split(d *dataset.Dataset, opt Options) (train, test *dataset.Dataset, err error) {
	if d == nil {
		return nil, nil, errors.New("split: nil dataset")
	}
	opt, err = opt.validate()
	if err != nil {
		return nil, nil, err
	}

	// Group interaction indices by user, in order of first appearance, with
	// one map lookup per interaction and a counting sort into one flat array
	// (per-user slices would cost an allocation per user).
	uid := make([]int32, len(d.Interactions))
	ids := make(map[string]int32)
	var users []string
	var counts []int
	last, lastID := "", int32(-1)
	for i, in := range d.Interactions {
		id := lastID
		if id < 0 || in.UserID != last {
			var ok bool
			if id, ok = ids[in.UserID]; !ok {
				id = int32(len(users))
				ids[in.UserID] = id
				users = append(users, in.UserID)
				counts = append(counts, 0)
			}
			last, lastID = in.UserID, id
		}
		uid[i] = id
		counts[id]++
	}
	start := make([]int, len(users)+1)
	for u, c := range counts {
		start[u+1] = start[u] + c
	}
	order := make([]int, len(d.Interactions)) // indices grouped by user, each group in input order
	next := slices.Clone(start[:len(users)])
	for i, u := range uid {
		order[next[u]] = i
		next[u]++
	}

	inTest := make([]bool, len(d.Interactions))
	nTest := 0
	for u, name := range users {
		idx := order[start[u]:start[u+1]]
		n := len(idx)
		k := min(int(math.Ceil(opt.TestFrac*float64(n)-epsilon)), n-opt.MinTrain)
		if k <= 0 {
			continue
		}
		switch opt.Method {
		case Time:
			slices.SortStableFunc(idx, func(a, b int) int {
				return cmp.Compare(d.Interactions[a].Timestamp, d.Interactions[b].Timestamp)
			})
			idx = idx[n-k:]
		case Random:
			r := rand.NewPCG(uint64(opt.Seed), userHash(name))
			for i := range k { // partial Fisher–Yates: idx[:k] is a uniform sample
				j := i + int(bounded(r, uint64(n-i)))
				idx[i], idx[j] = idx[j], idx[i]
			}
			idx = idx[:k]
		}
		for _, i := range idx {
			inTest[i] = true
		}
		nTest += k
	}

	train = &dataset.Dataset{
		Interactions: make([]dataset.Interaction, 0, len(d.Interactions)-nTest),
		Items:        slices.Clone(d.Items),
		Users:        slices.Clone(d.Users),
	}
	test = &dataset.Dataset{
		Interactions: make([]dataset.Interaction, 0, nTest),
		Items:        slices.Clone(d.Items),
		Users:        slices.Clone(d.Users),
	}
	for i, in := range d.Interactions {
		if inTest[i] {
			test.Interactions = append(test.Interactions, in)
		} else {
			train.Interactions = append(train.Interactions, in)
		}
	}
	return train, test, nil
}

// bounded returns a uniform integer in [0, n) from r by Lemire's
// multiply-and-reject method. It is written out, rather than using
// rand.Rand.IntN, so the split depends only on the PCG output stream, which is
// a fixed algorithm, and cannot change with the Go release.
func bounded(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// userHash gives each user an independent random stream, so one user's
// sample does not depend on which other users exist or in which order.
func userHash(u string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(u))
	return h.Sum64()
}
