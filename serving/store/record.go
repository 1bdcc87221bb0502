package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
)

// Records are the binary form in which every backend stores an Event, a
// dataset.Item, an Impression or an Outcome, so that Pebble and Redis share
// one encoding, one set of checks and one benchmark. The format is compact
// (a typical event is about 80 bytes, against about 200 in JSON) and cheap
// to decode, because start-up reads every stored event through it.
//
// A record is a tag byte followed by fields in a fixed order:
//
//	event v1:      0x01 ID ItemID Type Value Seconds Nanos SessionID
//	               RecommendationID nContext {Key Value}*
//	item v1:       0x81 ID Title Category Brand Price Description Flags
//	impression v1: 0x41 ID Seconds Nanos Kind SessionID Route Arm
//	               nModels {Name Version ModelFlags}* nItems {Item}*
//	outcome v1:    0xc1 ImpressionID EventID ItemID Type Seconds Nanos
//	               Position Revenue OutcomeFlags
//
// Strings are a uvarint length and the bytes; Value, Price and Revenue are
// the float64's IEEE bits as 8 little-endian bytes (NaN and its payload
// survive); Seconds is a varint of Unix seconds and Nanos a uvarint below
// 1e9 (full precision; the location is not kept, times decode in UTC);
// nContext is a uvarint and the Context pairs follow with their keys in
// strictly increasing order; Flags is one byte, 1 for OutOfStock and 2 for
// Hidden. nModels and nItems are uvarints; ModelFlags is one byte, 1 for
// Canary; Position is a varint; OutcomeFlags is one byte, 1 for Purchase
// and 2 for ByID. The event, impression and outcome records have no
// UserID: both backends keep the user in the key or list the record is
// stored under.
//
// The tag's two high bits name the kind (00 event, 10 item, 01 impression,
// 11 outcome) and its six low bits the version, so a reader rejects a
// record of another kind as well as a version it does not know, rather
// than guess. The event ID comes right after the tag, so a reader needing
// only the ID (DecodeEventID, Redis's Lua scripts) stops there: later
// versions must keep it there. An impression record likewise starts with
// the impression's ID, an outcome record with the ID of the impression it
// is attributed to.
//
// Records carry no length: a decoder reports how many bytes the record
// took, so records concatenate. Encoding is canonical: a decoder accepts
// exactly what the encoder writes (minimal varints, sorted unique Context
// keys, no unknown flag bits), so equal values have equal records. Redis
// relies on it: a sorted set of records holds an impression or outcome
// stored twice once.
const (
	eventV1      = 0x01
	itemV1       = 0x81
	impressionV1 = 0x41
	outcomeV1    = 0xc1
)

// Item record flags, one bit each.
const (
	flagOutOfStock = 1 << iota
	flagHidden

	knownFlags = flagOutOfStock | flagHidden
)

// Impression record model flags, one bit each.
const (
	modelCanary = 1 << iota

	knownModelFlags = modelCanary
)

// Outcome record flags, one bit each.
const (
	outcomePurchase = 1 << iota
	outcomeByID

	knownOutcomeFlags = outcomePurchase | outcomeByID
)

// maxVarintLen is the most bytes a 64-bit varint takes.
const maxVarintLen = binary.MaxVarintLen64

// sortedPairsOnStack is the Context size up to which AppendEvent sorts
// the pairs without allocating.
const sortedPairsOnStack = 8

// ErrCorrupt marks stored data that does not decode: a record (or a key)
// that is truncated, has an unknown tag, or holds bytes no encoder writes.
// Backends wrap it so a caller can tell damaged (or newer-release) data
// from an unreachable store (ErrUnavailable).
var ErrCorrupt = errors.New("corrupt record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendTime appends t as Seconds and Nanos: full precision, whatever its
// location.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// AppendEvent appends e's record, without its UserID, to b and returns the
// extended buffer, so a backend can build a key and its value, or many
// records, in one reused buffer. The output depends only on e (Context
// keys are written sorted), so the same event always has the same bytes.
func AppendEvent(b []byte, e *Event) []byte {
	b = append(b, eventV1)
	b = appendString(b, e.ID)
	b = appendString(b, e.ItemID)
	b = appendString(b, e.Type)
	b = appendFloat(b, e.Value)
	b = appendTime(b, e.Time)
	b = appendString(b, e.SessionID)
	b = appendString(b, e.RecommendationID)
	b = binary.AppendUvarint(b, uint64(len(e.Context)))
	if len(e.Context) == 0 {
		return b
	}
	// The pairs are copied out and sorted together, so the values need no
	// second map lookup; a small context stays on the stack and is sorted
	// by insertion, which beats a call per comparison at these sizes.
	var onStack [sortedPairsOnStack]contextPair
	pairs := onStack[:0]
	for k, v := range e.Context {
		pairs = append(pairs, contextPair{k, v})
	}
	if len(pairs) <= sortedPairsOnStack {
		for i := 1; i < len(pairs); i++ {
			for j := i; j > 0 && pairs[j].k < pairs[j-1].k; j-- {
				pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
			}
		}
	} else {
		slices.SortFunc(pairs, func(a, b contextPair) int { return strings.Compare(a.k, b.k) })
	}
	for _, p := range pairs {
		b = appendString(b, p.k)
		b = appendString(b, p.v)
	}
	return b
}

// contextPair is one Context entry while AppendEvent sorts them.
type contextPair struct{ k, v string }

// AppendItem appends the item's record, ID included, to b and returns the
// extended buffer. The record carries the ID so that it stands alone (a
// Redis change entry is a run of item records); Pebble, which also keys
// the item by ID, checks that the two agree.
func AppendItem(b []byte, it *dataset.Item) []byte {
	b = append(b, itemV1)
	b = appendString(b, it.ID)
	b = appendString(b, it.Title)
	b = appendString(b, it.Category)
	b = appendString(b, it.Brand)
	b = appendFloat(b, it.Price)
	b = appendString(b, it.Description)
	var flags byte
	if it.OutOfStock {
		flags |= flagOutOfStock
	}
	if it.Hidden {
		flags |= flagHidden
	}
	return append(b, flags)
}

// DecodeEvent decodes the event record at the start of rec, giving it
// userID, and returns it with the number of bytes the record took; bytes
// after it are left to the caller (the next record, or an error where rec
// should hold exactly one). Any truncation, unknown tag or non-canonical
// byte is an error wrapping ErrCorrupt, never a panic.
//
// rec is a string or a byte slice. The strings of an event decoded from a
// string share its memory, so decoding allocates nothing but the Context
// map (what Redis, whose replies are strings, wants); those decoded from a
// byte slice are copies, so the caller may reuse the slice (what Pebble,
// whose iterators reuse their buffers, needs).
func DecodeEvent[R ~string | ~[]byte](userID string, rec R) (Event, int, error) {
	d := decoder[R]{b: rec}
	d.tag(eventV1)
	e := Event{UserID: userID}
	e.ID = d.string("ID")
	e.ItemID = d.string("item ID")
	e.Type = d.string("type")
	e.Value = d.float("value")
	e.Time = d.time("time")
	e.SessionID = d.string("session ID")
	e.RecommendationID = d.string("recommendation ID")
	if n := d.uvarint("context"); n > 0 && d.err == nil {
		// Each pair takes at least two bytes: a count beyond that is
		// garbage, and must not size the map.
		if n > uint64(len(d.b)-d.off)/2 {
			d.corrupt("%d context pairs in %d bytes", n, len(d.b)-d.off)
		} else {
			e.Context = make(map[string]string, n)
			prev := ""
			for i := range n {
				k := d.string("context key")
				if i > 0 && k <= prev && d.err == nil {
					d.corrupt("context key %q after %q", k, prev)
				}
				e.Context[k] = d.string("context value")
				prev = k
			}
		}
	}
	if d.err != nil {
		return Event{}, 0, d.err
	}
	return e, d.off, nil
}

// DecodeEventID returns the ID of the event record at the start of rec
// without decoding the rest: deleting a user needs only the IDs of the
// user's events, to find their idempotency keys. rec is a string or a byte
// slice, as for DecodeEvent (the ID of a byte slice is a copy).
func DecodeEventID[R ~string | ~[]byte](rec R) (string, error) {
	d := decoder[R]{b: rec}
	d.tag(eventV1)
	id := d.string("ID")
	return id, d.err
}

// DecodeItem decodes the item record at the start of rec and returns it
// with the number of bytes the record took. rec is a string or a byte
// slice, with DecodeEvent's sharing and error rules.
func DecodeItem[R ~string | ~[]byte](rec R) (dataset.Item, int, error) {
	d := decoder[R]{b: rec}
	d.tag(itemV1)
	var it dataset.Item
	it.ID = d.string("ID")
	it.Title = d.string("title")
	it.Category = d.string("category")
	it.Brand = d.string("brand")
	it.Price = d.float("price")
	it.Description = d.string("description")
	flags := d.byte("flags")
	if flags&^knownFlags != 0 {
		d.corrupt("flags %#x", flags)
	}
	it.OutOfStock = flags&flagOutOfStock != 0
	it.Hidden = flags&flagHidden != 0
	if d.err != nil {
		return dataset.Item{}, 0, d.err
	}
	return it, d.off, nil
}

// AppendImpression appends imp's record, without its UserID, to b and
// returns the extended buffer. The record starts with the impression's ID
// and holds every other field, so that Redis can keep a user's impressions
// as a sorted set of records: two different impressions never share a
// record, and the same impression stored twice is one member.
func AppendImpression(b []byte, imp *Impression) []byte {
	b = append(b, impressionV1)
	b = appendString(b, imp.ID)
	b = appendTime(b, imp.Time)
	b = appendString(b, imp.Kind)
	b = appendString(b, imp.SessionID)
	b = appendString(b, imp.Route)
	b = appendString(b, imp.Arm)
	b = binary.AppendUvarint(b, uint64(len(imp.Models)))
	for i := range imp.Models {
		m := &imp.Models[i]
		b = appendString(b, m.Name)
		b = appendString(b, m.Version)
		var flags byte
		if m.Canary {
			flags |= modelCanary
		}
		b = append(b, flags)
	}
	b = binary.AppendUvarint(b, uint64(len(imp.Items)))
	for _, it := range imp.Items {
		b = appendString(b, it)
	}
	return b
}

// DecodeImpression decodes the impression record at the start of rec,
// giving it userID, and returns it with the number of bytes the record
// took. rec is a string or a byte slice, with DecodeEvent's sharing and
// error rules; Models and Items are nil when the record has none.
func DecodeImpression[R ~string | ~[]byte](userID string, rec R) (Impression, int, error) {
	d := decoder[R]{b: rec}
	d.tag(impressionV1)
	imp := Impression{UserID: userID}
	imp.ID = d.string("ID")
	imp.Time = d.time("time")
	imp.Kind = d.string("kind")
	imp.SessionID = d.string("session ID")
	imp.Route = d.string("route")
	imp.Arm = d.string("arm")
	// Each model takes at least three bytes and each item one: a count
	// beyond that is garbage, and must not size a slice.
	if n := d.uvarint("models"); n > 0 && d.err == nil {
		if n > uint64(len(d.b)-d.off)/3 {
			d.corrupt("%d models in %d bytes", n, len(d.b)-d.off)
		} else {
			imp.Models = make([]ModelVersion, n)
			for i := range imp.Models {
				m := &imp.Models[i]
				m.Name = d.string("model name")
				m.Version = d.string("model version")
				flags := d.byte("model flags")
				if flags&^knownModelFlags != 0 {
					d.corrupt("model flags %#x", flags)
				}
				m.Canary = flags&modelCanary != 0
			}
		}
	}
	if n := d.uvarint("items"); n > 0 && d.err == nil {
		if n > uint64(len(d.b)-d.off) {
			d.corrupt("%d items in %d bytes", n, len(d.b)-d.off)
		} else {
			imp.Items = make([]string, n)
			for i := range imp.Items {
				imp.Items[i] = d.string("item")
			}
		}
	}
	if d.err != nil {
		return Impression{}, 0, d.err
	}
	return imp, d.off, nil
}

// AppendOutcome appends out's record, without its UserID, to b and returns
// the extended buffer. The record starts with the ID of the impression the
// outcome is attributed to and holds every other field, so that equal
// outcomes (a retried AppendOutcomes) have equal records and are stored
// once.
func AppendOutcome(b []byte, out *Outcome) []byte {
	b = append(b, outcomeV1)
	b = appendString(b, out.ImpressionID)
	b = appendString(b, out.EventID)
	b = appendString(b, out.ItemID)
	b = appendString(b, out.Type)
	b = appendTime(b, out.Time)
	b = binary.AppendVarint(b, int64(out.Position))
	b = appendFloat(b, out.Revenue)
	var flags byte
	if out.Purchase {
		flags |= outcomePurchase
	}
	if out.ByID {
		flags |= outcomeByID
	}
	return append(b, flags)
}

// DecodeOutcome decodes the outcome record at the start of rec, giving it
// userID, and returns it with the number of bytes the record took. rec is
// a string or a byte slice, with DecodeEvent's sharing and error rules.
func DecodeOutcome[R ~string | ~[]byte](userID string, rec R) (Outcome, int, error) {
	d := decoder[R]{b: rec}
	d.tag(outcomeV1)
	out := Outcome{UserID: userID}
	out.ImpressionID = d.string("impression ID")
	out.EventID = d.string("event ID")
	out.ItemID = d.string("item ID")
	out.Type = d.string("type")
	out.Time = d.time("time")
	pos := d.varint("position")
	if int64(int(pos)) != pos {
		d.corrupt("position %d", pos)
	}
	out.Position = int(pos)
	out.Revenue = d.float("revenue")
	flags := d.byte("flags")
	if flags&^knownOutcomeFlags != 0 {
		d.corrupt("outcome flags %#x", flags)
	}
	out.Purchase = flags&outcomePurchase != 0
	out.ByID = flags&outcomeByID != 0
	if d.err != nil {
		return Outcome{}, 0, d.err
	}
	return out, d.off, nil
}

// decoder reads a record field by field from b at off. The first failure
// sticks and moves off to the end, so every later read fails too (each
// needs at least a byte) and a caller checks err once at the end.
type decoder[R ~string | ~[]byte] struct {
	b   R
	off int
	err error
}

// corrupt records a failure unless one is already recorded.
func (d *decoder[R]) corrupt(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
	d.off = len(d.b)
}

func (d *decoder[R]) truncated(what string) {
	d.corrupt("truncated or malformed %s at byte %d", what, d.off)
}

// uvarint reads a minimal uvarint: no overflow past 64 bits and no
// redundant trailing zero group, so each number has one encoding.
func (d *decoder[R]) uvarint(what string) uint64 {
	var x uint64
	var shift uint
	for i := 0; i < maxVarintLen && d.off+i < len(d.b); i++ {
		c := d.b[d.off+i]
		if c < 0x80 {
			if i == maxVarintLen-1 && c > 1 || i > 0 && c == 0 {
				break
			}
			d.off += i + 1
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.truncated(what)
	return 0
}

// varint reads a zig-zag varint, binary.AppendVarint's encoding.
func (d *decoder[R]) varint(what string) int64 {
	ux := d.uvarint(what)
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// string reads a length-prefixed string: a slice of b when R is a string,
// a copy when it is a byte slice.
func (d *decoder[R]) string(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.b)-d.off) {
		d.truncated(what)
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder[R]) float(what string) float64 {
	if len(d.b)-d.off < 8 {
		d.truncated(what)
		return 0
	}
	p := d.b[d.off : d.off+8]
	u := uint64(p[0]) | uint64(p[1])<<8 | uint64(p[2])<<16 | uint64(p[3])<<24 |
		uint64(p[4])<<32 | uint64(p[5])<<40 | uint64(p[6])<<48 | uint64(p[7])<<56
	d.off += 8
	return math.Float64frombits(u)
}

// time reads Seconds and Nanos, giving a time in UTC.
func (d *decoder[R]) time(what string) time.Time {
	sec := d.varint(what)
	nsec := d.uvarint(what)
	if nsec >= 1e9 {
		d.corrupt("%d nanoseconds", nsec)
	}
	if d.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder[R]) byte(what string) byte {
	if d.off >= len(d.b) {
		d.truncated(what)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// tag reads the record's tag byte and checks it is want.
func (d *decoder[R]) tag(want byte) {
	if t := d.byte("tag"); d.err == nil && t != want {
		d.corrupt("tag %#x, want %#x", t, want)
	}
}
