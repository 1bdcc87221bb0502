package main

import (
	"context"
	"fmt"
	"io"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models/content"
)

// Needs of the trainers that not every canonical data set meets; `recctl
// datainfo` reports each as one line "NAME yes|no DETAIL" and
// scripts/train.sh skips the models whose need is "no".
const (
	// needPurchases: `recctl features` finds purchases to label (the
	// propensity scorers).
	needPurchases = "purchases"
	// needItemText: some catalogue item has text the content model indexes.
	needItemText = "item-text"
	// needCategories: some item has a category (trending ranks within the
	// user's categories; without any it ranks by global popularity).
	needCategories = "categories"
	// needHistories: some user touched two different items (the neural
	// trainers hold items out of histories to validate).
	needHistories = "histories"
)

// need is one need checked against a data set.
type need struct {
	name   string
	ok     bool
	detail string // what was found, or why the need is not met
}

func runDatainfo(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "datainfo")
	data := fs.String("data", "", "canonical data set directory (required)")
	window := fs.Float64("window-days", 7, "label window of `recctl features` (the purchases need)")
	cuts := fs.Int("cuts", 4, "label windows of `recctl features` (the purchases need)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := required(fs, "data"); err != nil {
		return err
	}
	if *window <= 0 || *cuts < 1 {
		return fmt.Errorf("%w: datainfo: --window-days and --cuts must be positive", errUsage)
	}
	d, err := dataset.Read(*data)
	if err != nil {
		return fmt.Errorf("datainfo: %w", err)
	}
	writeDatainfo(e.stdout, *data, d, dataNeeds(d, *window, *cuts))
	return nil
}

// writeDatainfo prints a summary line, then one line per need:
// "NAME yes|no DETAIL", the name padded to one column.
func writeDatainfo(w io.Writer, dir string, d *dataset.Dataset, needs []need) {
	var byEvent [dataset.Rating + 1]int
	for _, in := range d.Interactions {
		if in.Event <= dataset.Rating {
			byEvent[in.Event]++
		}
	}
	fmt.Fprintf(w, "data set %s: %d users, %d items, %d interactions (view %d, cart %d, purchase %d, rating %d)\n",
		dir, countUsers(d), len(d.Items), len(d.Interactions),
		byEvent[dataset.View], byEvent[dataset.Cart], byEvent[dataset.Purchase], byEvent[dataset.Rating])
	for _, n := range needs {
		ok := "no"
		if n.ok {
			ok = "yes"
		}
		fmt.Fprintf(w, "%-10s %-3s %s\n", n.name, ok, n.detail)
	}
}

// dataNeeds checks d against every need; windowDays and cuts are the label
// windows of `recctl features`.
func dataNeeds(d *dataset.Dataset, windowDays float64, cuts int) []need {
	return []need{
		purchasesNeed(d, windowDays, cuts),
		itemTextNeed(d),
		categoriesNeed(d),
		historiesNeed(d),
	}
}

// purchasesNeed is met when features.Export would write rows: a purchase
// inside one of its cuts label windows of windowDays, each ending where the
// next starts and the last at the last event, counting only windows that
// start after the first event (features need history before the cut).
func purchasesNeed(d *dataset.Dataset, windowDays float64, cuts int) need {
	n := need{name: needPurchases}
	if len(d.Interactions) == 0 {
		n.detail = "the data set has no interactions"
		return n
	}
	first, last := d.Interactions[0].Timestamp, d.Interactions[0].Timestamp
	for _, in := range d.Interactions {
		first, last = min(first, in.Timestamp), max(last, in.Timestamp)
	}
	end := last + 1
	span := int64(windowDays * 86400)
	from := end // the earliest cut with history before it
	for c := cuts; c >= 1; c-- {
		if cut := end - int64(c)*span; cut > first {
			from = cut
			break
		}
	}
	total, labelled := 0, 0
	for _, in := range d.Interactions {
		if in.Event != dataset.Purchase {
			continue
		}
		total++
		if in.Timestamp >= from && in.Timestamp < end {
			labelled++
		}
	}
	switch {
	case total == 0:
		n.detail = "the data set has no purchase events"
	case labelled == 0:
		n.detail = fmt.Sprintf("none of its %d purchase events falls in the %d label windows of %g days before its last event (recctl features --window-days, --cuts)",
			total, cuts, windowDays)
	default:
		n.ok = true
		n.detail = fmt.Sprintf("%d of %d purchase events fall in the %d label windows of %g days", labelled, total, cuts, windowDays)
	}
	return n
}

// itemTextNeed is met when the default content analyzer finds a term in
// some item (title, description, category or brand).
func itemTextNeed(d *dataset.Dataset) need {
	n := need{name: needItemText}
	if len(d.Items) == 0 {
		n.detail = "the data set has no catalogue items (items.csv is missing or empty)"
		return n
	}
	a := content.DefaultAnalyzer()
	with := 0
	for _, it := range d.Items {
		if len(a.TermFreqs(it)) > 0 {
			with++
		}
	}
	n.ok = with > 0
	if n.ok {
		n.detail = fmt.Sprintf("%d of %d items have a title, description, category or brand", with, len(d.Items))
	} else {
		n.detail = fmt.Sprintf("none of its %d items has a title, description, category or brand", len(d.Items))
	}
	return n
}

// categoriesNeed is met when some item has a category.
func categoriesNeed(d *dataset.Dataset) need {
	n := need{name: needCategories}
	with := 0
	for _, it := range d.Items {
		if it.Category != "" {
			with++
		}
	}
	n.ok = with > 0
	if n.ok {
		n.detail = fmt.Sprintf("%d of %d items have a category", with, len(d.Items))
	} else {
		n.detail = fmt.Sprintf("none of its %d items has a category", len(d.Items))
	}
	return n
}

// historiesNeed is met when some user touched two different items.
func historiesNeed(d *dataset.Dataset) need {
	n := need{name: needHistories}
	firstItem := map[string]string{} // user → the first item seen
	multi := map[string]bool{}       // users with a second, different item
	for _, in := range d.Interactions {
		f, ok := firstItem[in.UserID]
		switch {
		case !ok:
			firstItem[in.UserID] = in.ItemID
		case f != in.ItemID:
			multi[in.UserID] = true
		}
	}
	n.ok = len(multi) > 0
	if n.ok {
		n.detail = fmt.Sprintf("%d of %d users touched two or more different items", len(multi), len(firstItem))
	} else {
		n.detail = fmt.Sprintf("none of its %d users touched two different items", len(firstItem))
	}
	return n
}
