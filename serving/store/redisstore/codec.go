package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Record encodings. Every record is a uvarint length followed by a body whose
// first byte is its version, so a reader can skip a record it cannot decode
// and a later release can change a body without rewriting the store:
//
//	event body v1: 0x01 ID ItemID Type Value(8, float64 LE) Seconds(varint)
//	               Nanos(uvarint) SessionID RecommendationID
//	               nContext(uvarint) {Key Value}*   (keys sorted)
//	item body v1:  0x01 ID Title Category Brand Price(8, float64 LE)
//	               Description Flags(1: 1 = OutOfStock, 2 = Hidden)
//
// where every string is a uvarint length and its bytes. The event body has no
// user ID: the user's list key and the change entry's "u" field carry it.
//
// A user's list element is the event record preceded by the 6-byte
// big-endian sequence number of the change-stream entry that announced it
// (elemSeqLen); the Lua scripts read that number and the event ID from the
// element without knowing the rest of the layout.
const (
	eventVersion = 1
	itemVersion  = 1
	elemSeqLen   = 6
)

var errCorrupt = errors.New("redisstore: corrupt record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendRecord appends body's length and body, where body is what the
// encoder appended after mark (the length is not known in advance, so the
// body is written first and shifted right to make room for it).
func appendRecord(b []byte, mark int) []byte {
	n := len(b) - mark
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	b = slices.Insert(b, mark, lb[:l]...)
	return b
}

// appendEvent appends e's record (without its UserID) to b.
func appendEvent(b []byte, e *store.Event) []byte {
	mark := len(b)
	b = append(b, eventVersion)
	b = appendString(b, e.ID)
	b = appendString(b, e.ItemID)
	b = appendString(b, e.Type)
	b = appendFloat(b, e.Value)
	b = binary.AppendVarint(b, e.Time.Unix())
	b = binary.AppendUvarint(b, uint64(e.Time.Nanosecond()))
	b = appendString(b, e.SessionID)
	b = appendString(b, e.RecommendationID)
	b = binary.AppendUvarint(b, uint64(len(e.Context)))
	if len(e.Context) > 0 {
		keys := make([]string, 0, len(e.Context))
		for k := range e.Context {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendString(b, k)
			b = appendString(b, e.Context[k])
		}
	}
	return appendRecord(b, mark)
}

// appendItem appends it's record to b.
func appendItem(b []byte, it *dataset.Item) []byte {
	mark := len(b)
	b = append(b, itemVersion)
	b = appendString(b, it.ID)
	b = appendString(b, it.Title)
	b = appendString(b, it.Category)
	b = appendString(b, it.Brand)
	b = appendFloat(b, it.Price)
	b = appendString(b, it.Description)
	var flags byte
	if it.OutOfStock {
		flags |= 1
	}
	if it.Hidden {
		flags |= 2
	}
	b = append(b, flags)
	return appendRecord(b, mark)
}

// reader decodes records from a string without copying: the strings it
// returns share the input's memory, so a decoded event costs no allocation
// beyond its Context map.
type reader struct {
	s   string
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < len(r.s); i++ {
		c := r.s[i]
		if c < 0x80 {
			if i >= binary.MaxVarintLen64 || i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			r.s = r.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	r.err = errCorrupt
	return 0
}

func (r *reader) varint() int64 {
	ux := r.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

func (r *reader) bytes(n uint64) string {
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.s)) {
		r.err = errCorrupt
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *reader) string() string { return r.bytes(r.uvarint()) }

func (r *reader) byte() byte {
	b := r.bytes(1)
	if b == "" {
		return 0
	}
	return b[0]
}

func (r *reader) float() float64 {
	b := r.bytes(8)
	if len(b) < 8 {
		return 0
	}
	var u uint64
	for i := 7; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	return math.Float64frombits(u)
}

// record returns a reader over the next record's body and checks its
// version.
func (r *reader) record(version byte) (reader, error) {
	body := reader{s: r.string()}
	if r.err != nil {
		return body, r.err
	}
	if v := body.byte(); v != version {
		return body, fmt.Errorf("%w: version %d, want %d", errCorrupt, v, version)
	}
	return body, nil
}

// event decodes the next event record, giving it userID.
func (r *reader) event(userID string) (store.Event, error) {
	b, err := r.record(eventVersion)
	if err != nil {
		return store.Event{}, err
	}
	e := store.Event{UserID: userID}
	e.ID = b.string()
	e.ItemID = b.string()
	e.Type = b.string()
	e.Value = b.float()
	sec := b.varint()
	nsec := b.uvarint()
	e.Time = time.Unix(sec, int64(nsec)).UTC()
	e.SessionID = b.string()
	e.RecommendationID = b.string()
	if n := b.uvarint(); n > 0 && b.err == nil {
		if n > uint64(len(b.s)) {
			return store.Event{}, errCorrupt
		}
		e.Context = make(map[string]string, n)
		for range n {
			k := b.string()
			e.Context[k] = b.string()
		}
	}
	if b.err != nil {
		return store.Event{}, b.err
	}
	return e, nil
}

// item decodes the next item record.
func (r *reader) item() (dataset.Item, error) {
	b, err := r.record(itemVersion)
	if err != nil {
		return dataset.Item{}, err
	}
	var it dataset.Item
	it.ID = b.string()
	it.Title = b.string()
	it.Category = b.string()
	it.Brand = b.string()
	it.Price = b.float()
	it.Description = b.string()
	flags := b.byte()
	it.OutOfStock, it.Hidden = flags&1 != 0, flags&2 != 0
	if b.err != nil {
		return dataset.Item{}, b.err
	}
	return it, nil
}

// elemSeq returns the change sequence number a list element starts with and
// the event record after it.
func elemSeq(elem string) (uint64, reader, error) {
	if len(elem) < elemSeqLen {
		return 0, reader{}, errCorrupt
	}
	var n uint64
	for i := range elemSeqLen {
		n = n<<8 | uint64(elem[i])
	}
	return n, reader{s: elem[elemSeqLen:]}, nil
}
