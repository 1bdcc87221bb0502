package content

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// Magic starts every content artifact; the digit is the layout version.
const Magic = "RSTFIDF1\n"

// ErrCorrupt is wrapped by every error Load returns for an artifact that is
// not a valid content artifact (bad magic, truncation, out-of-range indices,
// non-finite weights, checksum mismatch).
var ErrCorrupt = errors.New("corrupt content artifact")

// MaxTermBytes is the longest term an artifact may hold.
const MaxTermBytes = 1024

const (
	// maxArtifactBytes bounds what Load reads.
	maxArtifactBytes = 1 << 32
	// flagStopWords marks an analysis that removed English stop words.
	flagStopWords = 1 << 0
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes the model's artifact (not the item vocabulary, which is
// items.txt; see vocab.Vocab.WriteFile). The layout, all integers and floats
// little-endian:
//
//	magic        9 bytes   "RSTFIDF1\n"
//	flags        uint32    bit 0: English stop words were removed; other bits 0
//	fields       4×float64 field weights: title, description, category, brand
//	T            uint32    number of terms
//	N            uint32    number of items; must equal the vocabulary's length
//	NNZ          uint64    total number of non-zero item weights
//	terms        T×        uint32 byte length L (1..1024), then L bytes of UTF-8;
//	                       strictly ascending in byte order (term index = position)
//	idf          T×float32 idf of each term, finite and > 0
//	vectors      N×        in vocabulary order: uint32 count c, then c pairs of
//	                       (int32 term index, float32 weight), indices strictly
//	                       ascending and < T, weights finite and > 0, each
//	                       non-empty vector of unit L2 norm; Σc = NNZ
//	crc          uint32    CRC-32C (Castagnoli) of every preceding byte
//
// Nothing follows the checksum. Serving params are not in the artifact: they
// live in model.yaml, so they can change without retraining.
//
// A model that learned items writes its index as last built (see Items).
func (m *Model) Save(w io.Writer) error { return m.cur.Load().save(w) }

func (m *core) save(w io.Writer) error {
	h := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	var b [8]byte
	u32 := func(x uint32) {
		binary.LittleEndian.PutUint32(b[:4], x)
		bw.Write(b[:4])
	}
	u64 := func(x uint64) {
		binary.LittleEndian.PutUint64(b[:], x)
		bw.Write(b[:])
	}
	bw.WriteString(Magic)
	var flags uint32
	if m.analyzer.StopWords {
		flags |= flagStopWords
	}
	u32(flags)
	f := m.analyzer.Fields
	for _, x := range []float64{f.Title, f.Description, f.Category, f.Brand} {
		u64(math.Float64bits(x))
	}
	u32(uint32(len(m.terms)))
	u32(uint32(m.items.Len()))
	u64(uint64(len(m.rowTerm)))
	for _, t := range m.terms {
		u32(uint32(len(t)))
		bw.WriteString(t)
	}
	for _, x := range m.idf {
		u32(math.Float32bits(x))
	}
	for i := range m.items.Len() {
		lo, hi := m.rowPtr[i], m.rowPtr[i+1]
		u32(uint32(hi - lo))
		for j := lo; j < hi; j++ {
			u32(uint32(m.rowTerm[j]))
			u32(math.Float32bits(m.rowW[j]))
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:4], h.Sum32())
	_, err := w.Write(b[:4])
	return err
}

// Load reads an artifact written by Save for the item vocabulary items and
// serves it with the options o. It validates the whole artifact — magic,
// sizes against what is left to read, term order, index ranges, finite
// weights, unit norms, checksum — and returns an error wrapping ErrCorrupt
// instead of panicking on any bad input.
func Load(r io.Reader, items *vocab.Vocab, o Options) (*Model, error) {
	if items == nil {
		return nil, errors.New("nil item vocabulary")
	}
	if o.Weights == nil {
		o.Weights = models.DefaultEventWeights()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(r, maxArtifactBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read content artifact: %w", err)
	}
	if int64(len(data)) > maxArtifactBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, int64(maxArtifactBytes))
	}
	d := &decoder{b: data}
	if magic := d.bytes(len(Magic), "magic"); d.err == nil && string(magic) != Magic {
		return nil, fmt.Errorf("%w: bad magic %q, want %q (not a content artifact, or another version)", ErrCorrupt, magic, Magic)
	}
	flags := d.u32("flags")
	var fw [4]float64
	for k := range fw {
		fw[k] = math.Float64frombits(d.u64("field weights"))
	}
	nTerms := d.u32("term count")
	nItems := d.u32("item count")
	nnz := d.u64("non-zero count")
	if d.err != nil {
		return nil, d.err
	}
	if flags&^flagStopWords != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	a := Analyzer{Fields: Fields{Title: fw[0], Description: fw[1], Category: fw[2], Brand: fw[3]}, StopWords: flags&flagStopWords != 0}
	if err := a.Fields.Validate(); err != nil {
		return nil, fmt.Errorf("%w: field weights: %v", ErrCorrupt, err)
	}
	if int(nItems) != items.Len() {
		return nil, fmt.Errorf("%w: %d item vectors but the vocabulary has %d items", ErrCorrupt, nItems, items.Len())
	}
	// Every term takes at least 4+1+4 bytes, every item 4, every weight 8:
	// check the counts against what is left before allocating for them.
	rest := uint64(d.left())
	if uint64(nTerms)*9 > rest || uint64(nItems)*4 > rest || nnz > rest/8 {
		return nil, fmt.Errorf("%w: truncated: %d terms, %d items and %d weights do not fit in %d bytes", ErrCorrupt, nTerms, nItems, nnz, rest)
	}
	terms := make([]string, nTerms)
	for t := range terms {
		n := d.u32("term length")
		if d.err == nil && (n == 0 || n > MaxTermBytes) {
			return nil, fmt.Errorf("%w: term %d: length %d, want 1..%d", ErrCorrupt, t, n, MaxTermBytes)
		}
		terms[t] = string(d.bytes(int(n), "term"))
		if d.err != nil {
			return nil, fmt.Errorf("%w (term %d of %d)", d.err, t, nTerms)
		}
	}
	idf := make([]float32, nTerms)
	for t := range idf {
		idf[t] = math.Float32frombits(d.u32("idf"))
	}
	rowPtr := make([]int, nItems+1)
	rowTerm := make([]int32, 0, nnz)
	rowW := make([]float32, 0, nnz)
	for i := range int(nItems) {
		c := d.u32("vector length")
		if d.err == nil && uint64(len(rowTerm))+uint64(c) > nnz {
			return nil, fmt.Errorf("%w: item %q: vectors hold more than the %d weights declared", ErrCorrupt, items.ID(int32(i)), nnz)
		}
		for range c {
			rowTerm = append(rowTerm, int32(d.u32("term index")))
			rowW = append(rowW, math.Float32frombits(d.u32("weight")))
		}
		if d.err != nil {
			return nil, fmt.Errorf("%w (item %d of %d)", d.err, i, nItems)
		}
		rowPtr[i+1] = len(rowTerm)
	}
	if uint64(len(rowTerm)) != nnz {
		return nil, fmt.Errorf("%w: vectors hold %d weights, header declares %d", ErrCorrupt, len(rowTerm), nnz)
	}
	body := d.off
	sum := d.u32("checksum")
	if d.err != nil {
		return nil, d.err
	}
	if d.left() != 0 {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the checksum", ErrCorrupt, d.left())
	}
	if got := crc32.Checksum(data[:body], castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, want %08x", ErrCorrupt, got, sum)
	}
	m, err := build(items, terms, idf, rowPtr, rowTerm, rowW, a, o)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return newModel(m), nil
}

// decoder reads little-endian values from b; after the first error every read
// returns zero and err stays set.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) left() int { return len(d.b) - d.off }

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.left() {
		d.err = fmt.Errorf("%w: truncated at byte %d reading %s (%d bytes wanted, %d left)", ErrCorrupt, d.off, what, n, d.left())
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

func (d *decoder) u32(what string) uint32 {
	if p := d.bytes(4, what); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if p := d.bytes(8, what); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}
