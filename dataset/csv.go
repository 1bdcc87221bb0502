package dataset

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseError locates a malformed record so that a user can open the file at the
// offending line. Error returns "FILE:LINE: message"; LINE is the 1-based
// physical line (the header is line 1, blank lines count). Every reader in this
// package reports bad input as a *ParseError, possibly wrapped, so callers can
// find it with errors.As.
type ParseError struct {
	File string // file name or path, as given to the reader
	Line int    // 1-based physical line
	Err  error  // what is wrong with the record
}

// Error returns "FILE:LINE: message".
func (e *ParseError) Error() string {
	return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause so errors.Is sees through a ParseError.
func (e *ParseError) Unwrap() error { return e.Err }

// Canonical column names. Headers are matched by name, case-insensitively and
// ignoring surrounding space, so column order is free.
const (
	colUserID      = "user_id"
	colItemID      = "item_id"
	colEvent       = "event"
	colValue       = "value"
	colTimestamp   = "timestamp"
	colSessionID   = "session_id"
	colTitle       = "title"
	colCategory    = "category"
	colBrand       = "brand"
	colPrice       = "price"
	colInStock     = "in_stock"
	colHidden      = "hidden"
	colDescription = "description"
)

// Column lists in the order Write uses; the *Required lists mark the columns
// a file must have to be read.
var (
	interactionColumns  = []string{colUserID, colItemID, colEvent, colValue, colTimestamp, colSessionID}
	interactionRequired = []bool{true, true, true, false, true, false}
	itemColumns         = []string{colItemID, colTitle, colCategory, colBrand, colPrice, colDescription, colInStock, colHidden}
	itemRequired        = []bool{true, false, false, false, false, false, false, false}
)

// Read loads the data set stored in dir. interactions.csv is required;
// items.csv and users.csv are optional and read as empty when missing. Any
// malformed record yields a *ParseError naming the file path and line.
//
// The strings of each interaction share one allocation per line, so reading
// costs about one allocation per record.
func Read(dir string) (*Dataset, error) {
	d := &Dataset{}

	path := filepath.Join(dir, InteractionsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	d.Interactions = make([]Interaction, 0, EstimateLines(f))
	err = ReadInteractions(f, path, func(in Interaction) error {
		d.Interactions = append(d.Interactions, in)
		return nil
	})
	f.Close()
	if err != nil {
		return nil, err
	}

	path = filepath.Join(dir, ItemsFile)
	if f, err = os.Open(path); err == nil {
		d.Items, err = ReadItems(f, path)
		f.Close()
		if err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}

	path = filepath.Join(dir, UsersFile)
	if f, err = os.Open(path); err == nil {
		d.Users, err = ReadUsers(f, path)
		f.Close()
		if err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return d, nil
}

// EstimateLines guesses the number of lines in f from its size and the line
// length in its first 64 KiB, so a reader (Read, the importers) can size its
// slice once instead of growing (and copying) it dozens of times. The guess
// is capped, and any error just yields a small estimate.
func EstimateLines(f *os.File) int {
	fi, err := f.Stat()
	if err != nil || fi.Size() <= 0 {
		return 0
	}
	buf := make([]byte, min(fi.Size(), 64<<10))
	n, _ := f.ReadAt(buf, 0)
	lines := bytes.Count(buf[:n], []byte{'\n'})
	if n == 0 || lines == 0 {
		return 0
	}
	est := fi.Size()*int64(lines)/int64(n) + fi.Size()*int64(lines)/int64(n)/20 + 16
	return int(min(est, 1<<28))
}

// ReadInteractions streams the records of an interactions.csv from r, calling
// fn for each in file order; name is the file name used in errors. Streaming
// lets callers that only aggregate (counts, popularity) avoid holding the whole
// file. The strings in an Interaction share memory with the parsed record;
// clone them if that matters. An error returned by fn stops reading and is
// returned unchanged.
//
// Columns user_id, item_id, event and timestamp are required; value and
// session_id are optional. An empty value means 1 except for rating events,
// which need one. Timestamps are Unix seconds, or RFC3339.
func ReadInteractions(r io.Reader, name string, fn func(Interaction) error) error {
	cr := NewCSVReader(r)
	idx, width, err := readHeader(cr, name, interactionColumns, interactionRequired)
	if err != nil || width == 0 {
		return err
	}
	iu, ii, ie, iv, it, is := idx[0], idx[1], idx[2], idx[3], idx[4], idx[5]
	minFields := max(iu, ii, ie, it) + 1
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return csvError(name, err)
		}
		if err := checkWidth(rec, width, minFields); err != nil {
			return lineError(cr, name, err)
		}
		in, err := parseInteraction(field(rec, iu), field(rec, ii), field(rec, ie), field(rec, iv), field(rec, it))
		if err != nil {
			return lineError(cr, name, err)
		}
		in.SessionID = field(rec, is)
		if err := fn(in); err != nil {
			return err
		}
	}
}

// parseInteraction converts the already-trimmed fields of one record.
func parseInteraction(user, item, event, value, ts string) (Interaction, error) {
	in := Interaction{UserID: user, ItemID: item}
	if user == "" {
		return in, errors.New("empty user_id")
	}
	if item == "" {
		return in, errors.New("empty item_id")
	}
	switch event { // fast path for the canonical spelling
	case "view":
		in.Event = View
	case "cart":
		in.Event = Cart
	case "purchase":
		in.Event = Purchase
	case "rating":
		in.Event = Rating
	default:
		e, err := ParseEvent(event)
		if err != nil {
			return in, err
		}
		in.Event = e
	}
	if value == "" {
		if in.Event == Rating {
			return in, errors.New("rating event with empty value")
		}
		in.Value = 1
	} else {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return in, fmt.Errorf("bad value %q: want a finite number", value)
		}
		in.Value = v
	}
	t, err := ParseTimestamp(ts)
	if err != nil {
		return in, err
	}
	in.Timestamp = t
	return in, nil
}

// ParseTimestamp parses a canonical timestamp: integer Unix seconds, or an
// RFC3339 time (accepted on read so hand-written files stay readable).
func ParseTimestamp(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty timestamp")
	}
	if t, err := strconv.ParseInt(s, 10, 64); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Unix(), nil
	}
	return 0, fmt.Errorf("bad timestamp %q: want Unix seconds or RFC3339", s)
}

// ReadItems reads an items.csv from r; name is the file name used in errors.
// Only item_id is required; title, category, brand, price and description may
// be missing or empty. An empty price is NaN. A repeated item_id is an error,
// because every consumer indexes the catalogue by id.
func ReadItems(r io.Reader, name string) ([]Item, error) {
	cr := NewCSVReader(r)
	idx, width, err := readHeader(cr, name, itemColumns, itemRequired)
	if err != nil || width == 0 {
		return nil, err
	}
	var items []Item
	seen := make(map[string]int)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return items, nil
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		if err := checkWidth(rec, width, idx[0]+1); err != nil {
			return nil, lineError(cr, name, err)
		}
		it := Item{
			ID:          field(rec, idx[0]),
			Title:       field(rec, idx[1]),
			Category:    field(rec, idx[2]),
			Brand:       field(rec, idx[3]),
			Price:       math.NaN(),
			Description: field(rec, idx[5]),
		}
		if it.ID == "" {
			return nil, lineError(cr, name, errors.New("empty item_id"))
		}
		line, _ := cr.FieldPos(0)
		if first, dup := seen[it.ID]; dup {
			return nil, lineError(cr, name, fmt.Errorf("duplicate item_id %q (first on line %d)", it.ID, first))
		}
		seen[it.ID] = line
		if p := field(rec, idx[4]); p != "" {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || math.IsInf(v, 0) {
				return nil, lineError(cr, name, fmt.Errorf("bad price %q: want a number or empty", p))
			}
			it.Price = v
		}
		inStock, err := parseFlag(field(rec, idx[6]), true)
		if err != nil {
			return nil, lineError(cr, name, fmt.Errorf("in_stock: %w", err))
		}
		it.OutOfStock = !inStock
		if it.Hidden, err = parseFlag(field(rec, idx[7]), false); err != nil {
			return nil, lineError(cr, name, fmt.Errorf("hidden: %w", err))
		}
		items = append(items, it)
	}
}

// parseFlag reads an optional boolean cell: empty means def; true/false,
// yes/no, 1/0 in any case; for in_stock a stock count (> 0 is in stock).
func parseFlag(s string, def bool) (bool, error) {
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "true", "yes", "y", "t":
		return true, nil
	case "false", "no", "n", "f":
		return false, nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(n) {
		return n > 0, nil
	}
	return false, fmt.Errorf("bad value %q: want true/false, yes/no or a number", s)
}

// ReadUsers reads a users.csv from r; name is the file name used in errors.
// user_id is required; every other column is kept verbatim in User.Attrs under
// its (trimmed) header name. Empty cells are left out of Attrs, since CSV
// cannot tell an empty attribute from a missing one. A repeated user_id is an
// error.
func ReadUsers(r io.Reader, name string) ([]User, error) {
	cr := NewCSVReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	header = slices.Clone(header)
	iu := -1
	seenCol := make(map[string]bool)
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		if h != "" && seenCol[h] {
			return nil, lineError(cr, name, fmt.Errorf("duplicate column %q", h))
		}
		seenCol[h] = true
		if strings.EqualFold(h, colUserID) {
			if iu >= 0 {
				return nil, lineError(cr, name, fmt.Errorf("duplicate column %q", colUserID))
			}
			iu = i
		}
	}
	if iu < 0 {
		return nil, lineError(cr, name, fmt.Errorf("missing column %q", colUserID))
	}
	var users []User
	seen := make(map[string]int)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return users, nil
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		if err := checkWidth(rec, len(header), iu+1); err != nil {
			return nil, lineError(cr, name, err)
		}
		u := User{ID: field(rec, iu)}
		if u.ID == "" {
			return nil, lineError(cr, name, errors.New("empty user_id"))
		}
		line, _ := cr.FieldPos(0)
		if first, dup := seen[u.ID]; dup {
			return nil, lineError(cr, name, fmt.Errorf("duplicate user_id %q (first on line %d)", u.ID, first))
		}
		seen[u.ID] = line
		for i, h := range header {
			if i == iu || h == "" {
				continue
			}
			if v := field(rec, i); v != "" {
				if u.Attrs == nil {
					u.Attrs = make(map[string]string)
				}
				u.Attrs[h] = v
			}
		}
		users = append(users, u)
	}
}

// NewCSVReader returns a csv.Reader configured for the canonical format: BOM
// skipped, leading space trimmed, strict quotes, variable field counts (checked
// by the caller so the error can name the problem), records reused for speed.
// Other readers of user CSV files (recctl predict) share it so every CSV in
// recserve tolerates the same input.
func NewCSVReader(r io.Reader) *csv.Reader {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && string(b) == "\uFEFF" {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	return cr
}

// readHeader reads the header row and maps each wanted column to its index
// (-1 when absent). width is the number of header fields, 0 for an empty
// input (no header, no records), which readers treat as an empty file.
func readHeader(cr *csv.Reader, name string, want []string, required []bool) (idx []int, width int, err error) {
	header, err := cr.Read()
	if err == io.EOF {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, csvError(name, err)
	}
	idx = make([]int, len(want))
	for i := range idx {
		idx[i] = -1
	}
	for i, h := range header {
		h = strings.TrimSpace(h)
		for j, w := range want {
			if strings.EqualFold(h, w) {
				if idx[j] >= 0 {
					return nil, 0, lineError(cr, name, fmt.Errorf("duplicate column %q", w))
				}
				idx[j] = i
			}
		}
	}
	for j, w := range want {
		if required[j] && idx[j] < 0 {
			return nil, 0, lineError(cr, name, fmt.Errorf("missing column %q", w))
		}
	}
	return idx, len(header), nil
}

// checkWidth rejects records with more fields than the header (most often an
// unquoted comma that would shift every later column) and records too short
// to hold every required column. Records missing only trailing optional
// columns are accepted; those fields read as empty.
func checkWidth(rec []string, width, minFields int) error {
	if len(rec) > width {
		return fmt.Errorf("record has %d fields, header has %d (unquoted comma?)", len(rec), width)
	}
	if len(rec) < minFields {
		return fmt.Errorf("record has %d fields, want at least %d (missing field)", len(rec), minFields)
	}
	return nil
}

// field returns rec[i] trimmed, or "" when the column is absent or the record
// is short. TrimSpace returns a substring, so this does not allocate.
func field(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// lineError wraps err in a ParseError at the line of the record just read.
func lineError(cr *csv.Reader, name string, err error) error {
	line, _ := cr.FieldPos(0)
	return &ParseError{File: name, Line: line, Err: err}
}

// csvError converts an encoding/csv error into a ParseError; other errors
// (I/O) are returned with the file name added.
func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{File: name, Line: pe.Line, Err: pe.Err}
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Write stores d in dir in the canonical format, creating dir if needed.
// interactions.csv (always with a session_id column) and items.csv (a header
// even when there are no items) are always written; users.csv is written when
// d has users and removed otherwise, so that Read(dir) returns d again (up to
// surrounding space in text fields and empty user attributes, which reading
// drops). Each file is written to a temporary file in dir and renamed into
// place, so a reader never sees a half-written file. d is validated first; Write refuses
// data Read would reject.
func Write(dir string, d *Dataset) error {
	if d == nil {
		return errors.New("dataset: Write of nil dataset")
	}
	if err := d.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := writeFile(dir, InteractionsFile, func(w *csv.Writer) error {
		if err := w.Write(interactionColumns); err != nil {
			return err
		}
		rec := make([]string, len(interactionColumns))
		var buf []byte
		for _, in := range d.Interactions {
			buf = strconv.AppendFloat(buf[:0], in.Value, 'g', -1, 64)
			rec[0], rec[1], rec[2], rec[3] = in.UserID, in.ItemID, in.Event.String(), string(buf)
			rec[4], rec[5] = strconv.FormatInt(in.Timestamp, 10), in.SessionID
			if err := w.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = writeFile(dir, ItemsFile, func(w *csv.Writer) error {
		// The availability columns are written only when some item needs
		// them, so plain catalogues keep the six documented columns.
		cols := itemColumns[:6]
		for _, it := range d.Items {
			if it.OutOfStock || it.Hidden {
				cols = itemColumns
				break
			}
		}
		if err := w.Write(cols); err != nil {
			return err
		}
		rec := make([]string, len(cols))
		for _, it := range d.Items {
			price := ""
			if !math.IsNaN(it.Price) {
				price = strconv.FormatFloat(it.Price, 'g', -1, 64)
			}
			rec[0], rec[1], rec[2], rec[3], rec[4], rec[5] = it.ID, it.Title, it.Category, it.Brand, price, it.Description
			if len(cols) > 6 {
				rec[6], rec[7] = strconv.FormatBool(!it.OutOfStock), strconv.FormatBool(it.Hidden)
			}
			if err := w.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(d.Users) == 0 {
		if err := os.Remove(filepath.Join(dir, UsersFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	keySet := make(map[string]bool)
	for _, u := range d.Users {
		for k := range u.Attrs {
			keySet[k] = true
		}
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return writeFile(dir, UsersFile, func(w *csv.Writer) error {
		rec := append([]string{colUserID}, keys...)
		if err := w.Write(rec); err != nil {
			return err
		}
		for _, u := range d.Users {
			rec[0] = u.ID
			for i, k := range keys {
				rec[i+1] = u.Attrs[k]
			}
			if err := w.Write(rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeFile writes name in dir atomically (WriteFileAtomic) as CSV.
func writeFile(dir, name string, body func(*csv.Writer) error) error {
	err := WriteFileAtomic(filepath.Join(dir, name), func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := body(cw); err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// WriteFileAtomic writes path through body into a buffered temporary file in
// the same directory, which is synced and renamed over path, so readers see
// the old file or the whole new one. On failure the temporary file is
// removed and any existing path is left untouched.
func WriteFileAtomic(path string, body func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err = body(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Validate reports the first problem that would make d unreadable after Write
// or ambiguous to consumers: empty or space-padded ids, unknown events,
// non-finite values, duplicate item or user ids, infinite prices, and user
// attribute names that cannot be a users.csv column. It is cheap (one pass)
// and is called by Write; importers and generators may call it too.
func (d *Dataset) Validate() error {
	for i, in := range d.Interactions {
		if err := checkID(in.UserID); err != nil {
			return fmt.Errorf("interaction %d: user_id: %w", i, err)
		}
		if err := checkID(in.ItemID); err != nil {
			return fmt.Errorf("interaction %d: item_id: %w", i, err)
		}
		if in.Event == EventUnknown || int(in.Event) >= len(eventNames) {
			return fmt.Errorf("interaction %d: invalid %v", i, in.Event)
		}
		if math.IsNaN(in.Value) || math.IsInf(in.Value, 0) {
			return fmt.Errorf("interaction %d: value %v is not finite", i, in.Value)
		}
		if in.SessionID != strings.TrimSpace(in.SessionID) {
			return fmt.Errorf("interaction %d: session_id %q has surrounding space", i, in.SessionID)
		}
	}
	items := make(map[string]int, len(d.Items))
	for i, it := range d.Items {
		if err := checkID(it.ID); err != nil {
			return fmt.Errorf("item %d: item_id: %w", i, err)
		}
		if j, dup := items[it.ID]; dup {
			return fmt.Errorf("item %d: duplicate item_id %q (first at %d)", i, it.ID, j)
		}
		items[it.ID] = i
		if math.IsInf(it.Price, 0) {
			return fmt.Errorf("item %d: price %v is infinite", i, it.Price)
		}
	}
	users := make(map[string]int, len(d.Users))
	for i, u := range d.Users {
		if err := checkID(u.ID); err != nil {
			return fmt.Errorf("user %d: user_id: %w", i, err)
		}
		if j, dup := users[u.ID]; dup {
			return fmt.Errorf("user %d: duplicate user_id %q (first at %d)", i, u.ID, j)
		}
		users[u.ID] = i
		for k := range u.Attrs {
			if k == "" || k != strings.TrimSpace(k) || strings.EqualFold(k, colUserID) {
				return fmt.Errorf("user %d: bad attribute name %q", i, k)
			}
		}
	}
	return nil
}

// checkID rejects ids that would not survive a Write/Read round trip.
func checkID(id string) error {
	if id == "" {
		return errors.New("empty id")
	}
	if id != strings.TrimSpace(id) {
		return fmt.Errorf("id %q has surrounding space", id)
	}
	return nil
}
