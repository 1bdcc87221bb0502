package importer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/recserve/recserve/dataset"
)

// SessionGap is the inactivity gap that starts a new session when an importer
// derives sessions (RetailRocket has none): the 30 minutes customary in web
// analytics.
const SessionGap = 30 * 60 // seconds

// retailRocketPropertyFiles are the item property files read for categories,
// in order; later rows win ties, so part2 overrides part1 at equal times.
var retailRocketPropertyFiles = []string{"item_properties_part1.csv", "item_properties_part2.csv", "item_properties.csv"}

// RetailRocket imports the RetailRocket e-commerce data set. path is
// events.csv or the directory holding it. events.csv has the header
// timestamp,visitorid,event,itemid,transactionid with timestamps in Unix
// milliseconds (converted to seconds, rounding down); events view, addtocart
// and transaction become View, Cart and Purchase with Value 1.
//
// RetailRocket has no sessions, but sequence models need them, so SessionID
// is derived: a visitor's events, in time order, share a session until a gap
// of more than SessionGap seconds starts the next. Session ids are
// "<visitorid>-<n>" with n counting from 1 per visitor.
//
// If item_properties_part1.csv / item_properties_part2.csv (header
// timestamp,itemid,property,value) are next to events.csv, each item's
// Category is the latest value of its "categoryid" property; other properties
// (hashed in the public release) and category_tree.csv are ignored.
func RetailRocket(path string, opt Options) (*dataset.Dataset, Stats, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, Stats{}, err
	}
	if fi.IsDir() {
		path = filepath.Join(path, "events.csv")
	}
	b := newBuilder(opt)
	if err := b.retailRocketEvents(path); err != nil {
		return nil, b.stats, err
	}
	dir := filepath.Dir(path)
	type category struct {
		ts    int64
		value string
	}
	cats := make(map[string]category)
	for _, name := range retailRocketPropertyFiles {
		var its, ii, ip, iv int
		err := b.eachRecord(filepath.Join(dir, name), ',', false, func(t *table) (err error) {
			if its, err = t.require("timestamp"); err != nil {
				return err
			}
			if ii, err = t.require("itemid", "item_id"); err != nil {
				return err
			}
			if ip, err = t.require("property"); err != nil {
				return err
			}
			iv, err = t.require("value")
			return err
		}, func(t *table) error {
			if t.field(ip) != "categoryid" {
				return nil // most rows; skip before parsing anything else
			}
			id := t.field(ii)
			if id == "" {
				return t.errorf("empty itemid")
			}
			ts, err := strconv.ParseInt(t.field(its), 10, 64)
			if err != nil {
				return t.errorf("bad timestamp %q: want Unix milliseconds", t.field(its))
			}
			if c, ok := cats[id]; !ok || ts >= c.ts {
				cats[b.item(id).ID] = category{ts, strings.Clone(t.field(iv))}
			}
			return nil
		})
		if err != nil {
			return nil, b.stats, err
		}
	}
	for id, c := range cats {
		b.item(id).Category = c.value
	}
	d, st := b.result()
	return d, st, nil
}

// retailRocketEvents reads events.csv into b and derives sessions.
func (b *builder) retailRocketEvents(path string) error {
	var its, iv, ie, ii int
	err := b.eachRecord(path, ',', true, func(t *table) (err error) {
		if its, err = t.require("timestamp"); err != nil {
			return err
		}
		if iv, err = t.require("visitorid", "visitor_id"); err != nil {
			return err
		}
		if ie, err = t.require("event"); err != nil {
			return err
		}
		ii, err = t.require("itemid", "item_id")
		return err
	}, func(t *table) error {
		in := dataset.Interaction{UserID: t.field(iv), ItemID: t.field(ii), Value: 1}
		if in.UserID == "" {
			return t.errorf("empty visitorid")
		}
		if in.ItemID == "" {
			return t.errorf("empty itemid")
		}
		ms, err := strconv.ParseInt(t.field(its), 10, 64)
		if err != nil {
			return t.errorf("bad timestamp %q: want Unix milliseconds", t.field(its))
		}
		in.Timestamp = floorDiv(ms, 1000)
		if in.Event, err = parseEvent(t.field(ie)); err != nil {
			return t.errorf("%w", err)
		}
		if in.Event == dataset.Rating {
			return t.errorf("unexpected rating event in RetailRocket events")
		}
		b.add(in)
		return nil
	})
	if err != nil {
		return err
	}
	b.deriveSessions(SessionGap)
	return nil
}

// deriveSessions sorts b's interactions and assigns each user's events to
// sessions split by inactivity gaps longer than gap seconds.
func (b *builder) deriveSessions(gap int64) {
	b.sortInteractions()
	type state struct {
		last int64
		n    int
		id   string
	}
	users := make(map[string]*state)
	for i := range b.ins {
		in := &b.ins[i]
		s, ok := users[in.UserID]
		if !ok {
			s = &state{}
			users[in.UserID] = s
		}
		if s.n == 0 || in.Timestamp-s.last > gap {
			s.n++
			s.id = in.UserID + "-" + strconv.Itoa(s.n)
		}
		s.last = in.Timestamp
		in.SessionID = s.id
	}
}
