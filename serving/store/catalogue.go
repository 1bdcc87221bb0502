package store

import (
	"maps"
	"slices"
	"sort"

	"github.com/recserve/recserve/dataset"
)

// catalogue is an immutable snapshot of the items. Catalogue changes build a
// new one (copying the map: changes are rare next to the reads filters make
// for every candidate of every request, which then take no lock).
type catalogue struct {
	items map[string]dataset.Item
	// ids is every item id, sorted.
	ids []string
	// unavailable holds the hidden or out-of-stock items only: usually
	// empty, so the per-candidate check on the request path is one length
	// test.
	unavailable map[string]dataset.Item
	// categories lists each category's items, in id order.
	categories map[string][]string
}

func newCatalogue(items map[string]dataset.Item) *catalogue {
	c := &catalogue{items: items, ids: make([]string, 0, len(items)), categories: map[string][]string{}}
	for id, it := range items {
		c.ids = append(c.ids, id)
		if it.Hidden || it.OutOfStock {
			if c.unavailable == nil {
				c.unavailable = map[string]dataset.Item{}
			}
			c.unavailable[id] = it
		}
	}
	sort.Strings(c.ids)
	for _, id := range c.ids {
		if cat := items[id].Category; cat != "" {
			c.categories[cat] = append(c.categories[cat], id)
		}
	}
	return c
}

func (c *catalogue) availability(id string) (hidden, outOfStock bool) {
	if len(c.unavailable) == 0 {
		return false, false
	}
	it := c.unavailable[id]
	return it.Hidden, it.OutOfStock
}

// with returns a catalogue with items upserted and the ids in deleted
// removed, and how many of deleted existed.
func (c *catalogue) with(upsert []dataset.Item, deleted []string) (*catalogue, int) {
	items := maps.Clone(c.items)
	for _, it := range upsert {
		items[it.ID] = it
	}
	n := 0
	for _, id := range deleted {
		if _, ok := items[id]; ok {
			delete(items, id)
			n++
		}
	}
	return newCatalogue(items), n
}

// category returns the category's items (sorted by id); nil when unknown.
func (c *catalogue) category(cat string) []string { return slices.Clip(c.categories[cat]) }
