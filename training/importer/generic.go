package importer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/recserve/recserve/dataset"
)

// Mapping tells CSV which source columns hold which interaction fields, so
// any export with a header row can be imported without code. Column names are
// matched case-insensitively, ignoring surrounding space.
type Mapping struct {
	User      string // user id column; required
	Item      string // item id column; required
	Event     string // event column; optional, see DefaultEvent
	Value     string // value column; optional (empty cell or no column: 1, but rating events need a value)
	Timestamp string // timestamp column; optional (no column: every timestamp is 0)
	Session   string // session id column; optional

	// DefaultEvent is the event of every row when there is no Event column, and
	// of rows whose event cell is empty. Zero means View.
	DefaultEvent dataset.Event
	// Delimiter separates fields; zero means ','.
	Delimiter rune
	// TimeLayout is a time.Parse layout tried before numbers, for exports with
	// formatted dates; without a zone it is read as UTC. Numeric timestamps
	// are seconds, or milliseconds above 1e11; RFC3339 is always accepted.
	TimeLayout string
}

// validate checks the mapping before any file is read, so a CLI typo fails
// fast with a message naming the key.
func (m Mapping) validate() error {
	if strings.TrimSpace(m.User) == "" {
		return errors.New("importer: mapping needs a user column (user=NAME)")
	}
	if strings.TrimSpace(m.Item) == "" {
		return errors.New("importer: mapping needs an item column (item=NAME)")
	}
	if m.DefaultEvent > dataset.Rating {
		return fmt.Errorf("importer: mapping default event %v is invalid", m.DefaultEvent)
	}
	if m.DefaultEvent == dataset.Rating && m.Value == "" {
		return errors.New("importer: default event rating needs a value column (value=NAME)")
	}
	if d := m.Delimiter; d != 0 && (d == '"' || d == '\r' || d == '\n' || d == utf8.RuneError || !utf8.ValidRune(d)) {
		return fmt.Errorf("importer: mapping delimiter %q is invalid", d)
	}
	return nil
}

// delimiterNames are the names ParseMapping accepts for delimiters that
// cannot be written literally in a comma-separated flag.
var delimiterNames = map[string]rune{
	"comma": ',', "tab": '\t', `\t`: '\t', "semicolon": ';', "pipe": '|', "space": ' ',
}

// ParseMapping parses the CLI form of a Mapping: comma-separated key=value
// pairs, e.g. "user=uid,item=sku,event=type,timestamp=ts". Keys: user, item,
// event, value, timestamp (or ts, time), session, default-event (view, cart,
// purchase, rating), delimiter (a single character, or comma, tab, semicolon,
// pipe, space) and time-layout (a Go layout, which therefore cannot contain a
// comma). Unknown or repeated keys are errors.
func ParseMapping(s string) (Mapping, error) {
	var m Mapping
	seen := make(map[string]bool)
	for _, kv := range strings.Split(s, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return Mapping{}, fmt.Errorf("importer: mapping %q: want key=value", kv)
		}
		k = strings.ReplaceAll(k, "_", "-")
		switch k {
		case "ts", "time":
			k = "timestamp"
		case "delim", "sep", "separator":
			k = "delimiter"
		case "layout":
			k = "time-layout"
		}
		if seen[k] {
			return Mapping{}, fmt.Errorf("importer: mapping key %q repeated", k)
		}
		seen[k] = true
		switch k {
		case "user":
			m.User = v
		case "item":
			m.Item = v
		case "event":
			m.Event = v
		case "value":
			m.Value = v
		case "timestamp":
			m.Timestamp = v
		case "session":
			m.Session = v
		case "default-event":
			e, err := dataset.ParseEvent(v)
			if err != nil {
				return Mapping{}, fmt.Errorf("importer: mapping default-event: %w", err)
			}
			m.DefaultEvent = e
		case "delimiter":
			if r, ok := delimiterNames[strings.ToLower(v)]; ok {
				m.Delimiter = r
			} else if utf8.RuneCountInString(v) == 1 {
				m.Delimiter, _ = utf8.DecodeRuneInString(v)
			} else {
				return Mapping{}, fmt.Errorf("importer: mapping delimiter %q: want one character or comma, tab, semicolon, pipe, space", v)
			}
		case "time-layout":
			m.TimeLayout = v
		default:
			return Mapping{}, fmt.Errorf("importer: mapping key %q unknown (want user, item, event, value, timestamp, session, default-event, delimiter, time-layout)", k)
		}
	}
	if err := m.validate(); err != nil {
		return Mapping{}, err
	}
	return m, nil
}

// CSV imports any delimited file with a header row, using m to find the
// columns. Event cells accept the canonical names and common synonyms (click,
// addtocart, transaction, buy, order, ...); an empty cell or a missing Event
// column means m.DefaultEvent. Timestamps are parsed as described on
// Mapping.TimeLayout. The output has items with ids only.
func CSV(path string, m Mapping, opt Options) (*dataset.Dataset, Stats, error) {
	if err := m.validate(); err != nil {
		return nil, Stats{}, err
	}
	def := m.DefaultEvent
	if def == dataset.EventUnknown {
		def = dataset.View
	}
	comma := m.Delimiter
	if comma == 0 {
		comma = ','
	}
	b := newBuilder(opt)
	iu, ii, ie, iv, it, is := -1, -1, -1, -1, -1, -1
	optional := func(t *table, name string, i *int) error {
		if name == "" {
			return nil
		}
		var err error
		*i, err = t.require(name)
		return err
	}
	err := b.eachRecord(path, comma, true, func(t *table) (err error) {
		if iu, err = t.require(m.User); err != nil {
			return err
		}
		if ii, err = t.require(m.Item); err != nil {
			return err
		}
		for _, o := range []struct {
			name string
			i    *int
		}{{m.Event, &ie}, {m.Value, &iv}, {m.Timestamp, &it}, {m.Session, &is}} {
			if err := optional(t, o.name, o.i); err != nil {
				return err
			}
		}
		return nil
	}, func(t *table) error {
		in := dataset.Interaction{UserID: t.field(iu), ItemID: t.field(ii), Event: def, SessionID: t.field(is)}
		if in.UserID == "" {
			return t.errorf("empty user id (column %q)", m.User)
		}
		if in.ItemID == "" {
			return t.errorf("empty item id (column %q)", m.Item)
		}
		var err error
		if e := t.field(ie); e != "" {
			if in.Event, err = parseEvent(e); err != nil {
				return t.errorf("%w", err)
			}
		}
		if in.Value, err = parseValue(t.field(iv), in.Event); err != nil {
			return t.errorf("%w", err)
		}
		if it >= 0 {
			if in.Timestamp, err = parseTime(t.field(it), m.TimeLayout); err != nil {
				return t.errorf("%w", err)
			}
		}
		b.add(in)
		return nil
	})
	if err != nil {
		return nil, b.stats, err
	}
	d, st := b.result()
	return d, st, nil
}
