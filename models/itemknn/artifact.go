package itemknn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"

	"github.com/recserve/recserve/models/vocab"
)

// Magic opens every artifact; its last digit is the format version.
const Magic = "RSIKNN1\n"

const (
	headerSize = len(Magic) + 4 + 8
	entrySize  = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes the neighbour table in the artifact layout of the package
// documentation. The vocabulary is saved separately (Items().WriteFile).
func (m *Model) Save(w io.Writer) error {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 64<<10)
	var buf [headerSize]byte
	copy(buf[:], Magic)
	binary.LittleEndian.PutUint32(buf[8:], uint32(m.items.Len()))
	binary.LittleEndian.PutUint64(buf[12:], uint64(len(m.nbrs)))
	bw.Write(buf[:])
	var rec [entrySize]byte
	for i := range m.items.Len() {
		l := m.Neighbors(int32(i))
		binary.LittleEndian.PutUint32(rec[:4], uint32(len(l)))
		bw.Write(rec[:4])
		for _, nb := range l {
			binary.LittleEndian.PutUint32(rec[:4], uint32(nb.Index))
			binary.LittleEndian.PutUint32(rec[4:], math.Float32bits(nb.Sim))
			bw.Write(rec[:])
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(rec[:4], crc.Sum32())
	_, err := w.Write(rec[:4])
	return err
}

// Load reads an artifact written by Save for the vocabulary items, with the
// serving options o. It checks everything the package documentation promises
// (magic, item count, size, checksum, index ranges, order, finite
// similarities) and reports the first violation. It reads the whole file
// before decoding it, so what it allocates is bounded by the file's real
// size, never by a count read from it.
func Load(r io.Reader, items *vocab.Vocab, o Options) (*Model, error) {
	if items == nil {
		return nil, errors.New("nil vocabulary")
	}
	data, err := readAll(r)
	if err != nil {
		return nil, err
	}
	if len(data) < headerSize {
		return nil, fmt.Errorf("header: %w", errTruncated)
	}
	if string(data[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("bad magic %q: not an itemknn artifact (want %q)", data[:len(Magic)], Magic)
	}
	n := binary.LittleEndian.Uint32(data[8:])
	total := binary.LittleEndian.Uint64(data[12:])
	if int64(n) != int64(items.Len()) {
		return nil, fmt.Errorf("artifact has %d items, vocabulary has %d", n, items.Len())
	}
	if n > 0 && total > uint64(n)*uint64(n-1) || n == 0 && total != 0 {
		return nil, fmt.Errorf("%d neighbour entries for %d items: more than possible", total, n)
	}
	size := uint64(headerSize) + 4*uint64(n) + entrySize*total + 4
	switch {
	case uint64(len(data)) < size:
		return nil, fmt.Errorf("%d bytes, header promises %d: %w", len(data), size, errTruncated)
	case uint64(len(data)) > size:
		return nil, fmt.Errorf("%d trailing bytes after the checksum", uint64(len(data))-size)
	}
	body, sum := data[:size-4], binary.LittleEndian.Uint32(data[size-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("checksum mismatch: file says %08x, content is %08x", sum, got)
	}
	b := newBuilder(int(n), int(total))
	rest := body[headerSize:]
	for i := range int32(n) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("item %d: neighbour count: %w", i, errTruncated)
		}
		c := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if c > n-1 {
			return nil, fmt.Errorf("item %d: %d neighbours, at most %d possible", i, c, n-1)
		}
		if uint64(len(b.nbrs))+uint64(c) > total || uint64(len(rest)) < uint64(c)*entrySize {
			return nil, fmt.Errorf("item %d: neighbour counts exceed the header's total %d", i, total)
		}
		for k := range int(c) {
			e := rest[k*entrySize:]
			b.nbrs = append(b.nbrs, Neighbor{
				Index: int32(binary.LittleEndian.Uint32(e)),
				Sim:   math.Float32frombits(binary.LittleEndian.Uint32(e[4:])),
			})
		}
		rest = rest[int(c)*entrySize:]
		if err := b.close(i); err != nil {
			return nil, err
		}
	}
	if uint64(len(b.nbrs)) != total {
		return nil, fmt.Errorf("neighbour counts sum to %d, header says %d", len(b.nbrs), total)
	}
	return b.model(items, o)
}

// errTruncated reports a file that ends early.
var errTruncated = fmt.Errorf("truncated file: %w", io.ErrUnexpectedEOF)

// readAll reads r to the end, in one allocation when r can tell its size
// (an *os.File, a *bytes.Reader).
func readAll(r io.Reader) ([]byte, error) {
	size := int64(-1)
	switch x := r.(type) {
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := x.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	case interface{ Len() int }:
		size = int64(x.Len())
	}
	if size < 0 || size > 1<<40 {
		return io.ReadAll(r)
	}
	buf := make([]byte, size)
	n, err := io.ReadFull(r, buf)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return buf[:n], nil // shorter than announced
	}
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(r) // normally empty
	return append(buf, rest...), err
}
