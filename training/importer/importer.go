// Package importer converts public and customer data sets into recserve's
// canonical dataset.Dataset: MovieLens (100K u.data, 1M/10M ratings.dat,
// ratings.csv of the "latest" releases), RetailRocket events.csv, and any CSV
// through a column Mapping.
//
// All importers share the same conventions, so their output can be compared
// and fed to the same trainers:
//   - Input may start with a UTF-8 BOM, use CRLF line ends and carry stray
//     space around fields; blank lines are skipped.
//   - A malformed record is reported as a *dataset.ParseError naming the file
//     and 1-based physical line. With Options.SkipBad the record is skipped
//     and counted in Stats.Skipped instead; the first few such errors are kept
//     in Stats.Errors.
//   - Interactions are sorted by (timestamp, user id), stably, so file order
//     breaks remaining ties. Items and users are sorted by id. Ids made only of
//     digits sort numerically and before all other ids, which sort bytewise.
//   - Every item id seen in the interactions gets an Item (Price NaN), with
//     metadata where a side file provides it; items only in a side file are
//     kept too, as they are part of the catalogue.
//
// The functions are safe to call concurrently; they share no state.
package importer

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/recserve/recserve/dataset"
)

// MaxErrors is how many skipped-record errors Stats.Errors keeps, enough to
// show a user what is wrong without holding millions of errors.
const MaxErrors = 10

// Options controls error handling common to all importers.
type Options struct {
	// SkipBad skips malformed records, counting them in Stats.Skipped, instead
	// of failing the import: real-world dumps often have a few broken lines.
	SkipBad bool
}

// Stats reports what an import did, so a caller can tell how much of a file
// was usable.
type Stats struct {
	Lines    int     // data records read from the interactions file (header and blank lines excluded)
	Imported int     // interactions produced
	Skipped  int     // malformed records skipped, in any file read (only with Options.SkipBad)
	Items    int     // items produced
	Users    int     // users produced
	Errors   []error // the first MaxErrors skipped-record errors, each a *dataset.ParseError
}

// builder accumulates one import: interactions, item metadata and users, with
// ids interned so a large file keeps one string per distinct id (the parsed
// records can then be freed).
type builder struct {
	opt      Options
	stats    Stats
	ins      []dataset.Interaction
	items    map[string]*dataset.Item // also the interner for item ids
	users    map[string]*dataset.User
	userIDs  map[string]string
	sessions map[string]string
	lastUser string // the previous interaction's interned user id; files often group by user
}

func newBuilder(opt Options) *builder {
	return &builder{
		opt:      opt,
		items:    make(map[string]*dataset.Item),
		users:    make(map[string]*dataset.User),
		userIDs:  make(map[string]string),
		sessions: make(map[string]string),
	}
}

// bad handles a malformed record: with SkipBad it is counted and nil is
// returned so the caller continues; otherwise the error is returned.
func (b *builder) bad(err error) error {
	if !b.opt.SkipBad {
		return err
	}
	b.stats.Skipped++
	if len(b.stats.Errors) < MaxErrors {
		b.stats.Errors = append(b.stats.Errors, err)
	}
	return nil
}

// intern returns the shared copy of s from m.
func intern(m map[string]string, s string) string {
	if v, ok := m[s]; ok {
		return v
	}
	s = strings.Clone(s)
	m[s] = s
	return s
}

// add records one interaction and makes sure its item is in the catalogue.
func (b *builder) add(in dataset.Interaction) {
	if in.UserID == b.lastUser {
		in.UserID = b.lastUser
	} else {
		in.UserID = intern(b.userIDs, in.UserID)
		b.lastUser = in.UserID
	}
	in.ItemID = b.item(in.ItemID).ID
	if in.SessionID != "" {
		in.SessionID = intern(b.sessions, in.SessionID)
	}
	b.ins = append(b.ins, in)
}

// item returns the catalogue entry for id, creating it (Price NaN) if needed.
func (b *builder) item(id string) *dataset.Item {
	if it, ok := b.items[id]; ok {
		return it
	}
	id = strings.Clone(id)
	it := &dataset.Item{ID: id, Price: math.NaN()}
	b.items[id] = it
	return it
}

// user returns the users.csv entry for id, creating it if needed.
func (b *builder) user(id string) *dataset.User {
	if u, ok := b.users[id]; ok {
		return u
	}
	id = intern(b.userIDs, id)
	u := &dataset.User{ID: id}
	b.users[id] = u
	return u
}

// sortInteractions orders b.ins by (timestamp, user id), stably.
func (b *builder) sortInteractions() {
	slices.SortStableFunc(b.ins, func(x, y dataset.Interaction) int {
		if c := cmp.Compare(x.Timestamp, y.Timestamp); c != 0 {
			return c
		}
		return compareIDs(x.UserID, y.UserID)
	})
}

// result sorts and assembles the data set and final stats.
func (b *builder) result() (*dataset.Dataset, Stats) {
	b.sortInteractions()
	d := &dataset.Dataset{Interactions: b.ins}
	if len(b.items) > 0 {
		d.Items = make([]dataset.Item, 0, len(b.items))
		for _, it := range b.items {
			d.Items = append(d.Items, *it)
		}
		slices.SortFunc(d.Items, func(x, y dataset.Item) int { return compareIDs(x.ID, y.ID) })
	}
	if len(b.users) > 0 {
		d.Users = make([]dataset.User, 0, len(b.users))
		for _, u := range b.users {
			d.Users = append(d.Users, *u)
		}
		slices.SortFunc(d.Users, func(x, y dataset.User) int { return compareIDs(x.ID, y.ID) })
	}
	b.stats.Imported = len(d.Interactions)
	b.stats.Items = len(d.Items)
	b.stats.Users = len(d.Users)
	return d, b.stats
}

// compareIDs orders ids made only of ASCII digits numerically (ignoring
// leading zeros, then bytewise as a tie-break) and before any other id; other
// ids compare bytewise. It is a total order, so sorts are deterministic.
func compareIDs(a, b string) int {
	an, bn := isDigits(a), isDigits(b)
	switch {
	case an && bn:
		ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(ta), len(tb)); c != 0 {
			return c
		}
		if c := strings.Compare(ta, tb); c != 0 {
			return c
		}
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decodeText returns s as UTF-8. MovieLens side files are ISO-8859-1; a
// string that is already valid UTF-8 is kept as is (later releases are
// UTF-8, and Latin-1 text with accents is almost never valid UTF-8), anything
// else is decoded byte by byte as Latin-1.
func decodeText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		sb.WriteRune(rune(s[i]))
	}
	return sb.String()
}

// lines iterates the non-blank lines of a text file, trimmed, with a leading
// BOM removed. It is used for the formats that are not CSV (u.data,
// ratings.dat, u.item ...).
type lines struct {
	name string
	sc   *bufio.Scanner
	line int    // physical line number of text
	text string // current line, trimmed
}

func newLines(r io.Reader, name string) *lines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return &lines{name: name, sc: sc}
}

// next advances to the next non-blank line and reports whether there is one.
func (l *lines) next() bool {
	for l.sc.Scan() {
		l.line++
		t := l.sc.Text()
		if l.line == 1 {
			t = strings.TrimPrefix(t, "\uFEFF")
		}
		if t = strings.TrimSpace(t); t != "" {
			l.text = t
			return true
		}
	}
	return false
}

// err returns the scanner's error, if any, located at the failing line.
func (l *lines) err() error {
	if err := l.sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", l.name, l.line+1, err)
	}
	return nil
}

// errorf builds a ParseError at the current line.
func (l *lines) errorf(format string, args ...any) error {
	return &dataset.ParseError{File: l.name, Line: l.line, Err: fmt.Errorf(format, args...)}
}

// splitTrim splits s by sep and trims every field.
func splitTrim(s, sep string) []string {
	f := strings.Split(s, sep)
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

// table reads a CSV file with a header row, matching columns by name
// (case-insensitive, trimmed), tolerating a BOM, CRLF and stray space.
type table struct {
	name      string
	cr        *csv.Reader
	header    []string // trimmed, lower-case
	minFields int      // records shorter than this are malformed
	rec       []string
	line      int
}

// newTable opens a CSV stream and reads its header. An empty stream gives a
// table with no header and no records.
func newTable(r io.Reader, name string, comma rune) (*table, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	if comma != 0 {
		cr.Comma = comma
	}
	cr.FieldsPerRecord = -1
	// Leading space before a quote is tolerated, except when the delimiter is
	// itself white space: csv would then swallow empty fields.
	cr.TrimLeadingSpace = !unicode.IsSpace(cr.Comma)
	cr.ReuseRecord = true
	t := &table{name: name, cr: cr}
	h, err := cr.Read()
	if err == io.EOF {
		return t, nil
	}
	if err != nil {
		return nil, t.csvError(err)
	}
	t.line, _ = cr.FieldPos(0)
	for _, c := range h {
		t.header = append(t.header, strings.ToLower(strings.TrimSpace(c)))
	}
	return t, nil
}

// col returns the index of the first header column equal to one of names
// (compared case-insensitively), or -1.
func (t *table) col(names ...string) int {
	for _, n := range names {
		if i := slices.Index(t.header, strings.ToLower(strings.TrimSpace(n))); i >= 0 {
			return i
		}
	}
	return -1
}

// require returns the index of column name or a ParseError on the header line
// naming the missing column; it also records that records must reach it.
func (t *table) require(name string, aliases ...string) (int, error) {
	i := t.col(append([]string{name}, aliases...)...)
	if i < 0 {
		return -1, &dataset.ParseError{File: t.name, Line: max(t.line, 1), Err: fmt.Errorf("missing column %q", name)}
	}
	t.minFields = max(t.minFields, i+1)
	return i, nil
}

// next reads the next record. It returns false at the end. A malformed
// record yields a *dataset.ParseError, after which reading may continue;
// other errors (I/O) are fatal.
func (t *table) next() (bool, error) {
	if t.header == nil {
		return false, nil
	}
	rec, err := t.cr.Read()
	if err == io.EOF {
		return false, nil
	}
	if err != nil {
		return false, t.csvError(err)
	}
	t.rec = rec
	t.line, _ = t.cr.FieldPos(0)
	if len(rec) > len(t.header) {
		return false, t.errorf("record has %d fields, header has %d (unquoted delimiter?)", len(rec), len(t.header))
	}
	if len(rec) < t.minFields {
		return false, t.errorf("record has %d fields, want at least %d (missing field)", len(rec), t.minFields)
	}
	return true, nil
}

// field returns field i of the current record, trimmed ("" if absent).
func (t *table) field(i int) string {
	if i < 0 || i >= len(t.rec) {
		return ""
	}
	return strings.TrimSpace(t.rec[i])
}

// errorf builds a ParseError at the current record's line.
func (t *table) errorf(format string, args ...any) error {
	return &dataset.ParseError{File: t.name, Line: t.line, Err: fmt.Errorf(format, args...)}
}

func (t *table) csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &dataset.ParseError{File: t.name, Line: pe.Line, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", t.name, err)
}

// isParseError reports whether err is a malformed-record error that SkipBad
// may skip (as opposed to an I/O error).
func isParseError(err error) bool {
	var pe *dataset.ParseError
	return errors.As(err, &pe)
}

// eventNames maps the event spellings found in common exports to canonical
// events, so that generic CSVs and RetailRocket need no extra mapping.
var eventNames = map[string]dataset.Event{
	"view": dataset.View, "views": dataset.View, "click": dataset.View, "detail": dataset.View,
	"pageview": dataset.View, "page_view": dataset.View, "impression": dataset.View,
	"cart": dataset.Cart, "addtocart": dataset.Cart, "add_to_cart": dataset.Cart, "add-to-cart": dataset.Cart,
	"purchase": dataset.Purchase, "buy": dataset.Purchase, "order": dataset.Purchase,
	"transaction": dataset.Purchase, "checkout": dataset.Purchase,
	"rating": dataset.Rating, "rate": dataset.Rating,
}

// parseEvent maps an event cell to a canonical event, case-insensitively.
func parseEvent(s string) (dataset.Event, error) {
	if e, ok := eventNames[s]; ok {
		return e, nil
	}
	if e, ok := eventNames[strings.ToLower(s)]; ok {
		return e, nil
	}
	return dataset.EventUnknown, fmt.Errorf("unknown event %q (want view, cart, purchase or rating, or a synonym such as addtocart, transaction, click)", s)
}

// parseValue parses an interaction value: a finite float, or 1 when empty for
// every event but Rating, which needs one.
func parseValue(s string, e dataset.Event) (float64, error) {
	if s == "" {
		if e == dataset.Rating {
			return 0, errors.New("rating event with empty value")
		}
		return 1, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("bad value %q: want a finite number", s)
	}
	return v, nil
}

// millisThreshold separates Unix seconds from Unix milliseconds: 1e11 seconds
// is the year 5138, 1e11 milliseconds is March 1973, so any plausible
// timestamp above it is in milliseconds.
const millisThreshold = 1e11

// fallbackLayouts are tried, after numbers, for timestamps without a layout.
var fallbackLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// parseTime converts a timestamp cell to Unix seconds. layout, when set, is
// tried first (in UTC unless it has a zone); then integer or decimal seconds,
// or milliseconds when the magnitude exceeds millisThreshold; then RFC3339 and
// a few common ISO-like layouts.
func parseTime(s, layout string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty timestamp")
	}
	if layout != "" {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix(), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > millisThreshold || n < -millisThreshold {
			return floorDiv(n, 1000), nil
		}
		return n, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < 9e18 {
		if math.Abs(f) > millisThreshold {
			f /= 1000
		}
		return int64(math.Floor(f)), nil
	}
	for _, l := range fallbackLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.Unix(), nil
		}
	}
	if layout != "" {
		return 0, fmt.Errorf("bad timestamp %q: want layout %q, Unix seconds or milliseconds", s, layout)
	}
	return 0, fmt.Errorf("bad timestamp %q: want Unix seconds or milliseconds, or RFC3339", s)
}

// floorDiv divides rounding towards negative infinity, so times before 1970
// in milliseconds map to the second they fall in.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
