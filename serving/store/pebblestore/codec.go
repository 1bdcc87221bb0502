package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Values are a version byte followed by fields in a fixed order: strings as
// a uvarint length and the bytes, float64s as 8 little-endian bytes of
// their IEEE bits (NaN survives), times as varint Unix seconds and uvarint
// nanoseconds (full precision; the location is not kept, times come back
// in UTC). The ID or user a key already holds is not repeated in the
// value. A reader rejects versions it does not know rather than guess.
const (
	eventV1 = 1
	itemV1  = 1
)

// Item flags, one bit each in the item value.
const (
	flagOutOfStock = 1 << iota
	flagHidden
)

// errCorrupt marks a value that does not decode.
var errCorrupt = errors.New("corrupt value")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendEvent appends e's value, without its user (the key holds it), to b.
func appendEvent(b []byte, e *store.Event) []byte {
	b = append(b, eventV1)
	b = appendString(b, e.ID)
	b = appendString(b, e.ItemID)
	b = appendString(b, e.Type)
	b = appendFloat(b, e.Value)
	b = binary.AppendVarint(b, e.Time.Unix())
	b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
	b = appendString(b, e.SessionID)
	b = appendString(b, e.RecommendationID)
	b = binary.AppendUvarint(b, uint64(len(e.Context)))
	for k, v := range e.Context {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return b
}

// appendItem appends it's value, without its ID (the key holds it), to b.
func appendItem(b []byte, it *dataset.Item) []byte {
	b = append(b, itemV1)
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

// decoder reads a value field by field; the first failure sticks, so a
// caller checks err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// string copies the next string out of the value, which the iterator
// reuses after the call.
func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) float(what string) float64 {
	if len(d.b) < 8 {
		d.fail(what)
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return f
}

func (d *decoder) byte(what string) byte {
	if len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// version reads the version byte and checks it is want.
func (d *decoder) version(want byte) {
	if v := d.byte("version"); d.err == nil && v != want {
		d.err = fmt.Errorf("%w: unknown version %d", errCorrupt, v)
	}
}

// decodeEvent decodes an event value; user comes from the key.
func decodeEvent(user string, b []byte) (store.Event, error) {
	d := decoder{b: b}
	d.version(eventV1)
	e := store.Event{UserID: user}
	e.ID = d.string("id")
	e.ItemID = d.string("item")
	e.Type = d.string("type")
	e.Value = d.float("value")
	sec := d.varint("time")
	nsec := d.uvarint("time")
	if d.err == nil && nsec >= 1e9 {
		d.err = fmt.Errorf("%w: %d nanoseconds", errCorrupt, nsec)
	}
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	e.SessionID = d.string("session")
	e.RecommendationID = d.string("recommendation")
	if n := d.uvarint("context"); n > 0 && d.err == nil {
		if n > uint64(len(d.b)) { // each pair takes at least two bytes
			d.fail("context")
		} else {
			e.Context = make(map[string]string, n)
			for range n {
				k := d.string("context key")
				e.Context[k] = d.string("context value")
			}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return e, d.err
}

// eventID reads only the ID of an event value, which is all DeleteUser
// needs to find the event's idempotency key.
func eventID(b []byte) (string, error) {
	d := decoder{b: b}
	d.version(eventV1)
	id := d.string("id")
	return id, d.err
}

// decodeItem decodes an item value; id comes from the key.
func decodeItem(id string, b []byte) (dataset.Item, error) {
	d := decoder{b: b}
	d.version(itemV1)
	it := dataset.Item{ID: id}
	it.Title = d.string("title")
	it.Category = d.string("category")
	it.Brand = d.string("brand")
	it.Price = d.float("price")
	it.Description = d.string("description")
	flags := d.byte("flags")
	it.OutOfStock = flags&flagOutOfStock != 0
	it.Hidden = flags&flagHidden != 0
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	return it, d.err
}
