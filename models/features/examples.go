package features

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// Example is one labelled (user, item) pair of a training or evaluation set.
type Example struct {
	UserID, ItemID string
	// Label is 1 when the user bought the item inside the label window.
	Label float64
}

// SampleOptions say how negatives are drawn around the positives.
type SampleOptions struct {
	// NegItems is the number of negative items per positive for the same
	// user; 0 means 4.
	NegItems int
	// HardFrac is the share of NegItems drawn from items the user touched
	// (before the cut, or viewed in the window) without buying them in the
	// window: the hard cases a ranker meets. The rest are random catalogue
	// items, half uniform, half by popularity. 0 means 0.5; negative means
	// none.
	HardFrac float64
	// NegUsers is the number of negative users per positive for the same item:
	// active users who did not buy it, which teaches audience targeting. 0
	// means 1; negative means none.
	NegUsers int
	// Seed makes the draw reproducible.
	Seed uint64
}

func (o SampleOptions) withDefaults() SampleOptions {
	if o.NegItems == 0 {
		o.NegItems = 4
	}
	if o.HardFrac == 0 {
		o.HardFrac = 0.5
	}
	o.HardFrac = min(max(o.HardFrac, 0), 1)
	if o.NegUsers == 0 {
		o.NegUsers = 1
	}
	o.NegItems, o.NegUsers = max(o.NegItems, 0), max(o.NegUsers, 0)
	return o
}

// Sample labels the purchases of window as positives and draws negatives
// around them. history is what was known before the window (features are
// computed from it); catalogue lists every item that may be drawn. The
// result is sorted by user, then item, and has no duplicate pairs.
func Sample(history, window []dataset.Interaction, catalogue []string, opts SampleOptions) []Example {
	opts = opts.withDefaults()
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	type pair struct{ user, item string }
	bought := map[pair]bool{}
	touched := map[string]map[string]bool{} // user → items touched
	touch := func(u, i string) {
		m := touched[u]
		if m == nil {
			m = map[string]bool{}
			touched[u] = m
		}
		m[i] = true
	}
	var positives []pair
	for _, in := range window {
		switch in.Event {
		case dataset.Purchase:
			p := pair{in.UserID, in.ItemID}
			if !bought[p] {
				bought[p] = true
				positives = append(positives, p)
			}
		case dataset.View, dataset.Cart:
			touch(in.UserID, in.ItemID)
		}
	}
	pop := map[string]float64{}
	activeSet := map[string]bool{}
	for _, in := range history {
		touch(in.UserID, in.ItemID)
		pop[in.ItemID]++
		activeSet[in.UserID] = true
	}
	slices.SortFunc(positives, func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.item, b.item))
	})
	active := make([]string, 0, len(activeSet))
	for u := range activeSet {
		active = append(active, u)
	}
	sort.Strings(active)
	items := slices.Clone(catalogue)
	sort.Strings(items)
	cum := make([]float64, len(items))
	var total float64
	for i, id := range items {
		total += pop[id]
		cum[i] = total
	}
	randomItem := func() string {
		if total == 0 || rng.IntN(2) == 0 {
			return items[rng.IntN(len(items))]
		}
		x := rng.Float64() * total
		return items[min(sort.SearchFloat64s(cum, x), len(items)-1)]
	}

	seen := map[pair]bool{}
	var out []Example
	add := func(p pair) bool {
		if seen[p] || bought[p] {
			return false
		}
		seen[p] = true
		out = append(out, Example{UserID: p.user, ItemID: p.item})
		return true
	}
	hardByUser := map[string][]string{}
	for _, p := range positives {
		seen[p] = true
		out = append(out, Example{UserID: p.user, ItemID: p.item, Label: 1})
	}
	for _, p := range positives {
		hard, ok := hardByUser[p.user]
		if !ok {
			for i := range touched[p.user] {
				if !bought[pair{p.user, i}] {
					hard = append(hard, i)
				}
			}
			sort.Strings(hard)
			rng.Shuffle(len(hard), func(i, j int) { hard[i], hard[j] = hard[j], hard[i] })
		}
		want := int(math.Round(opts.HardFrac * float64(opts.NegItems)))
		got := 0
		for got < want && len(hard) > 0 {
			if add(pair{p.user, hard[0]}) {
				got++
			}
			hard = hard[1:]
		}
		hardByUser[p.user] = hard
		for tries := 0; got < opts.NegItems && len(items) > 0 && tries < 20*opts.NegItems; tries++ {
			if add(pair{p.user, randomItem()}) {
				got++
			}
		}
		got = 0
		for tries := 0; got < opts.NegUsers && len(active) > 0 && tries < 20*opts.NegUsers; tries++ {
			if add(pair{active[rng.IntN(len(active))], p.item}) {
				got++
			}
		}
	}
	slices.SortFunc(out, func(a, b Example) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.ItemID, b.ItemID))
	})
	return out
}

// ExportOptions configure a training matrix export.
type ExportOptions struct {
	// WindowDays is the label window after each cut; 0 means 7.
	WindowDays float64
	// Cuts is the number of consecutive windows, ending at the last event;
	// 0 means 4. Each cut yields the rows of one window, with features from
	// the events strictly before it.
	Cuts int
	// Sample draws the negatives; its Seed is offset per cut.
	Sample SampleOptions
	// Pipeline configures the feature snapshot; its Now is set per cut.
	Pipeline Options
}

// ExportSummary counts what Export wrote.
type ExportSummary struct {
	Rows, Positives int
	Cuts            []int64
}

// Export writes the training matrix of d as CSV: a header
// user_id,item_id,cut,label followed by every feature name, then one row per
// sampled example. Every cut builds its own pipeline from the events before
// it, so no row sees the future. An empty cell is a missing value.
func Export(ctx context.Context, w io.Writer, d *dataset.Dataset, opts ExportOptions) (ExportSummary, error) {
	var sum ExportSummary
	if len(d.Interactions) == 0 {
		return sum, errors.New("features: the data set has no interactions")
	}
	window := opts.WindowDays
	if window == 0 {
		window = 7
	}
	cuts := opts.Cuts
	if cuts == 0 {
		cuts = 4
	}
	if window <= 0 || cuts < 0 {
		return sum, fmt.Errorf("features: window %g days and %d cuts must be positive", window, cuts)
	}
	events := slices.Clone(d.Interactions)
	slices.SortStableFunc(events, func(a, b dataset.Interaction) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	end := events[len(events)-1].Timestamp + 1
	span := int64(window * day)
	catalogue := make([]string, 0, len(d.Items))
	for _, it := range d.Items {
		catalogue = append(catalogue, it.ID)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{"user_id", "item_id", "cut", "label"}, Names()...)); err != nil {
		return sum, err
	}
	for c := cuts; c >= 1; c-- {
		cut := end - int64(c)*span
		if cut <= events[0].Timestamp {
			continue // no history before this cut
		}
		lo, _ := slices.BinarySearchFunc(events, cut, func(in dataset.Interaction, t int64) int { return cmp.Compare(in.Timestamp, t) })
		hi, _ := slices.BinarySearchFunc(events, cut+span, func(in dataset.Interaction, t int64) int { return cmp.Compare(in.Timestamp, t) })
		history, labels := events[:lo], events[lo:hi]
		so := opts.Sample
		so.Seed += uint64(c)
		examples := Sample(history, labels, catalogue, so)
		po := opts.Pipeline
		po.Now = cut
		p := New(d.Items, history, po)
		byUser := map[string][]dataset.Interaction{}
		for _, in := range history {
			byUser[in.UserID] = append(byUser[in.UserID], in)
		}
		n, pos, err := p.writeRows(ctx, cw, examples, byUser, cut)
		if err != nil {
			return sum, err
		}
		sum.Rows += n
		sum.Positives += pos
		sum.Cuts = append(sum.Cuts, cut)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return sum, err
	}
	if sum.Rows == 0 {
		return sum, fmt.Errorf("features: no purchases in any of the %d windows of %g days: nothing to label", cuts, window)
	}
	return sum, nil
}

// writeRows writes the rows of examples (sorted by user), computing each
// user's summary once.
func (p *Pipeline) writeRows(ctx context.Context, w *csv.Writer, examples []Example, byUser map[string][]dataset.Interaction, cut int64) (n, pos int, err error) {
	b, err := p.BindNames(Names())
	if err != nil {
		return 0, 0, err
	}
	cutStr := strconv.FormatInt(cut, 10)
	var ids []string
	var rows []float64
	rec := make([]string, 4+numFeatures)
	for lo := 0; lo < len(examples); {
		if err := ctx.Err(); err != nil {
			return n, pos, err
		}
		user := examples[lo].UserID
		hi := lo
		ids = ids[:0]
		for hi < len(examples) && examples[hi].UserID == user {
			ids = append(ids, examples[hi].ItemID)
			hi++
		}
		rows = slices.Grow(rows[:0], len(ids)*numFeatures)[:len(ids)*numFeatures]
		if err := b.Rows(models.Query{UserID: user, History: byUser[user]}, ids, rows); err != nil {
			return n, pos, err
		}
		for i, ex := range examples[lo:hi] {
			rec[0], rec[1], rec[2] = ex.UserID, ex.ItemID, cutStr
			rec[3] = strconv.FormatFloat(ex.Label, 'g', -1, 64)
			for j, v := range rows[i*numFeatures : (i+1)*numFeatures] {
				rec[4+j] = ""
				if !math.IsNaN(v) {
					rec[4+j] = strconv.FormatFloat(v, 'g', -1, 64)
				}
			}
			if err := w.Write(rec); err != nil {
				return n, pos, err
			}
			n++
			if ex.Label == 1 {
				pos++
			}
		}
		lo = hi
	}
	return n, pos, nil
}
