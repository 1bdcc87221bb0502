package userknn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/recserve/recserve/models/vocab"
)

// Magic starts every artifact; its last digit is the layout version.
const Magic = "RSUKNN1\n"

// headerSize is the fixed header: magic and four counts (see the package
// documentation for the whole layout).
const headerSize = 24

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunk is how many array elements are encoded or decoded at a time: reading
// a corrupt header's huge counts fails at the end of the data rather than
// allocating them up front.
const chunk = 1 << 14

// Save writes the model in the artifact layout (see the package
// documentation). The model must have precomputed neighbours.
func (m *Model) Save(w io.Writer) error {
	if m.noff == nil {
		return errors.New("save: the model has no precomputed neighbours")
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	crc := crc32.New(castagnoli)
	e := &encoder{w: io.MultiWriter(bw, crc)}
	e.bytes([]byte(Magic))
	e.u32(uint32(len(m.users)))
	e.u32(uint32(m.items.Len()))
	e.u32(uint32(len(m.uitem)))
	e.u32(uint32(len(m.nnb)))
	for _, id := range m.users {
		if len(id) > math.MaxUint16 {
			return fmt.Errorf("save: user id %.20q… longer than %d bytes", id, math.MaxUint16)
		}
		e.u16(uint16(len(id)))
		e.bytes([]byte(id))
	}
	e.array(len(m.users), func(i int) uint32 { return m.events[i] })
	e.array(len(m.users), func(i int) uint32 { return math.Float32bits(m.means[i]) })
	e.array(len(m.users), func(i int) uint32 { return uint32(m.uoff[i+1] - m.uoff[i]) })
	e.array(len(m.uitem), func(i int) uint32 { return uint32(m.uitem[i]) })
	e.array(len(m.uval), func(i int) uint32 { return math.Float32bits(m.uval[i]) })
	e.array(len(m.users), func(i int) uint32 { return uint32(m.noff[i+1] - m.noff[i]) })
	e.array(len(m.nnb), func(i int) uint32 { return uint32(m.nnb[i].User) })
	e.array(len(m.nnb), func(i int) uint32 { return math.Float32bits(m.nnb[i].Similarity) })
	if e.err != nil {
		return e.err
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := bw.Write(sum[:]); err != nil {
		return err
	}
	return bw.Flush()
}

// encoder writes little-endian values, keeping the first error.
type encoder struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u16(v uint16) { e.bytes(binary.LittleEndian.AppendUint16(e.buf[:0], v)) }
func (e *encoder) u32(v uint32) { e.bytes(binary.LittleEndian.AppendUint32(e.buf[:0], v)) }

// array writes n uint32s given by at.
func (e *encoder) array(n int, at func(int) uint32) {
	for lo := 0; lo < n && e.err == nil; lo += chunk {
		b := e.buf[:0]
		for i := lo; i < min(n, lo+chunk); i++ {
			b = binary.LittleEndian.AppendUint32(b, at(i))
		}
		e.buf = b
		e.bytes(b)
	}
}

// Load reads a model saved by Save; items is its vocabulary and o its
// options. Everything is validated — magic, sizes, checksum, index ranges,
// order, finite values — and any problem is an error, never a panic.
func Load(r io.Reader, items *vocab.Vocab, o Options) (*Model, error) {
	if items == nil {
		return nil, errors.New("nil item vocabulary")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	crc := crc32.New(castagnoli)
	d := &decoder{r: io.TeeReader(bufio.NewReaderSize(r, 1<<16), crc), crc: crc}
	hdr := d.read(headerSize, "header")
	if d.err != nil {
		return nil, d.err
	}
	if string(hdr[:8]) != Magic {
		return nil, fmt.Errorf("bad magic %q: not a userknn artifact (want %q)", hdr[:8], Magic)
	}
	nu := binary.LittleEndian.Uint32(hdr[8:])
	ni := binary.LittleEndian.Uint32(hdr[12:])
	ne := binary.LittleEndian.Uint32(hdr[16:])
	nn := binary.LittleEndian.Uint32(hdr[20:])
	switch {
	case int64(ni) != int64(items.Len()):
		return nil, fmt.Errorf("artifact has %d items; the vocabulary has %d", ni, items.Len())
	case nu > maxEntries || ne > maxEntries || nn > maxEntries:
		return nil, fmt.Errorf("header counts out of range: %d users, %d entries, %d neighbours", nu, ne, nn)
	}
	m := &Model{opts: o, items: items}
	for u := uint32(0); u < nu && d.err == nil; u++ {
		b := d.read(2, "user ids")
		if d.err != nil {
			break
		}
		id := d.read(int(binary.LittleEndian.Uint16(b)), "user ids")
		m.users = append(m.users, string(id))
	}
	m.events = d.uint32s(int(nu), "events")
	m.means = d.float32s(int(nu), "means")
	m.uoff = d.offsets(int(nu), int(ne), "vector lengths")
	m.uitem = d.int32s(int(ne), "item indices")
	m.uval = d.float32s(int(ne), "values")
	m.noff = d.offsets(int(nu), int(nn), "neighbour counts")
	users := d.int32s(int(nn), "neighbour indices")
	sims := d.float32s(int(nn), "similarities")
	want := d.crc.Sum32()
	sum := d.read(4, "checksum")
	if d.err != nil {
		return nil, d.err
	}
	if got := binary.LittleEndian.Uint32(sum); got != want {
		return nil, fmt.Errorf("checksum mismatch: stored %08x, computed %08x (corrupt file)", got, want)
	}
	if n, _ := d.r.Read(make([]byte, 1)); n > 0 {
		return nil, errors.New("trailing data after the checksum")
	}
	m.nnb = make([]Neighbor, nn)
	for k := range m.nnb {
		m.nnb[k] = Neighbor{User: users[k], Similarity: sims[k]}
	}
	if err := m.index(); err != nil {
		return nil, err
	}
	if err := m.checkNeighbors(); err != nil {
		return nil, err
	}
	return m, nil
}

// decoder reads little-endian arrays, keeping the first error.
type decoder struct {
	r   io.Reader
	crc hash.Hash32
	buf []byte
	err error
}

// read returns the next n bytes (valid until the next call).
func (d *decoder) read(n int, section string) []byte {
	if d.err != nil {
		return nil
	}
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	if _, err := io.ReadFull(d.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		d.err = fmt.Errorf("truncated artifact: reading %s: %w", section, err)
		return nil
	}
	return b
}

// words decodes n uint32s chunk by chunk, calling put for each.
func (d *decoder) words(n int, section string, put func(uint32)) {
	for lo := 0; lo < n && d.err == nil; lo += chunk {
		b := d.read(4*(min(n, lo+chunk)-lo), section)
		for k := 0; k+4 <= len(b); k += 4 {
			put(binary.LittleEndian.Uint32(b[k:]))
		}
	}
}

func (d *decoder) uint32s(n int, section string) []uint32 {
	out := make([]uint32, 0, min(n, chunk))
	d.words(n, section, func(w uint32) { out = append(out, w) })
	return out
}

func (d *decoder) int32s(n int, section string) []int32 {
	out := make([]int32, 0, min(n, chunk))
	d.words(n, section, func(w uint32) { out = append(out, int32(w)) })
	return out
}

func (d *decoder) float32s(n int, section string) []float32 {
	out := make([]float32, 0, min(n, chunk))
	d.words(n, section, func(w uint32) { out = append(out, math.Float32frombits(w)) })
	return out
}

// offsets reads n lengths and returns their n+1 prefix sums, which must end
// at total.
func (d *decoder) offsets(n, total int, section string) []int32 {
	out := make([]int32, 1, min(n, chunk)+1)
	sum := int64(0)
	d.words(n, section, func(w uint32) {
		sum += int64(w)
		if sum > int64(total) && d.err == nil {
			d.err = fmt.Errorf("%s: sum exceeds the header's %d", section, total)
		}
		out = append(out, int32(min(sum, int64(total))))
	})
	if d.err == nil && sum != int64(total) {
		d.err = fmt.Errorf("%s: sum %d, header says %d", section, sum, total)
	}
	return out
}
