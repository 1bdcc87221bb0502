package content_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/models/vocab"
)

func save(t testing.TB, m *content.Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	d := demoModel(t)
	m := d.model
	b := save(t, m)
	o := content.Options{HalfLifeDays: 3, ProfileTerms: 100}
	got, err := content.Load(bytes.NewReader(b), m.Items(), o)
	if err != nil {
		t.Fatal(err)
	}
	if again := save(t, got); !bytes.Equal(again, b) {
		t.Error("Save(Load(Save(m))) differs from Save(m)")
	}
	if !reflect.DeepEqual(got.Terms(), m.Terms()) || !reflect.DeepEqual(got.IDF(), m.IDF()) || got.Analyzer() != m.Analyzer() {
		t.Error("Load(Save(m)) terms, idf or analyzer differ from m's")
	}
	if got.Options().HalfLifeDays != 3 || got.Options().ProfileTerms != 100 || got.Options().Weights == nil {
		t.Errorf("Load() options = %+v; want the given ones with default event weights", got.Options())
	}
	for _, id := range m.Items().IDs()[:50] {
		w1, _ := m.Weights(id)
		w2, _ := got.Weights(id)
		if !reflect.DeepEqual(w1, w2) {
			t.Fatalf("Weights(%s) after round trip = %v; want %v", id, w2, w1)
		}
	}
	// Same options, same answers.
	same, err := content.Load(bytes.NewReader(b), m.Items(), m.Options())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range d.histories[:20] {
		q := models.Query{History: h, K: 10, Allow: notSeen(h)}
		a, _ := m.Recommend(context.Background(), q)
		b, _ := same.Recommend(context.Background(), q)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("Recommend after round trip = %v; want %v", b, a)
		}
	}
}

// raw is an artifact spelled out field by field, encoded by the layout
// documented at Save: an independent encoder that keeps the documentation
// honest.
type raw struct {
	magic    string
	flags    uint32
	fields   [4]float64
	terms    []string
	idf      []float32
	nItems   int // -1: len(vectors)
	nnz      int // -1: the real count
	vectors  [][]pair
	trailing []byte
	crcXor   uint32
}

type pair struct {
	term int32
	w    float32
}

func goodRaw() raw {
	return raw{
		magic:  content.Magic,
		flags:  1,
		fields: [4]float64{2, 1, 1, 1},
		terms:  []string{"a", "b", "c"},
		idf:    []float32{1, 1.5, 2},
		nItems: -1, nnz: -1,
		vectors: [][]pair{
			{{0, 1}},
			{{0, 0.6}, {2, 0.8}},
			{},
		},
	}
}

func (r raw) encode() []byte {
	var b []byte
	u32 := func(x uint32) { b = binary.LittleEndian.AppendUint32(b, x) }
	b = append(b, r.magic...)
	u32(r.flags)
	for _, f := range r.fields {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	u32(uint32(len(r.terms)))
	n := r.nItems
	if n < 0 {
		n = len(r.vectors)
	}
	u32(uint32(n))
	nnz := r.nnz
	if nnz < 0 {
		nnz = 0
		for _, v := range r.vectors {
			nnz += len(v)
		}
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(nnz))
	for _, t := range r.terms {
		u32(uint32(len(t)))
		b = append(b, t...)
	}
	for _, x := range r.idf {
		u32(math.Float32bits(x))
	}
	for _, v := range r.vectors {
		u32(uint32(len(v)))
		for _, p := range v {
			u32(uint32(p.term))
			u32(math.Float32bits(p.w))
		}
	}
	u32(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) ^ r.crcXor)
	return append(b, r.trailing...)
}

func threeItems(t testing.TB) *vocab.Vocab {
	v, err := vocab.New([]string{"x", "y", "z"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadGoodRaw(t *testing.T) {
	m, err := content.Load(bytes.NewReader(goodRaw().encode()), threeItems(t), content.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Analyzer(), (content.Analyzer{Fields: content.Fields{Title: 2, Description: 1, Category: 1, Brand: 1}, StopWords: true}); got != want {
		t.Errorf("Analyzer() = %+v; want %+v", got, want)
	}
	if w, _ := m.Weights("y"); !reflect.DeepEqual(w, map[string]float64{"a": float64(float32(0.6)), "c": float64(float32(0.8))}) {
		t.Errorf("Weights(y) = %v; want a:0.6 c:0.8", w)
	}
	// The independent encoder and Save agree byte for byte.
	if got := save(t, m); !bytes.Equal(got, goodRaw().encode()) {
		t.Error("Save() differs from the layout documented at Save")
	}
}

func TestLoadCorrupt(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*raw)
		want   string
	}{
		{"bad magic", func(r *raw) { r.magic = "RSTFIDF2\n" }, "bad magic"},
		{"not ours", func(r *raw) { r.magic = "{\"items\":" }, "bad magic"},
		{"unknown flags", func(r *raw) { r.flags = 6 }, "unknown flags"},
		{"NaN field weight", func(r *raw) { r.fields[0] = math.NaN() }, "field weights"},
		{"zero field weights", func(r *raw) { r.fields = [4]float64{} }, "field weights"},
		{"item count", func(r *raw) { r.nItems = 4 }, "4 item vectors but the vocabulary has 3 items"},
		{"huge weight count", func(r *raw) { r.nnz = 1 << 40 }, "do not fit"},
		{"empty term", func(r *raw) { r.terms[1] = "" }, "length 0"},
		{"long term", func(r *raw) { r.terms[2] = strings.Repeat("z", content.MaxTermBytes+1) }, "length 1025"},
		{"unsorted terms", func(r *raw) { r.terms[0], r.terms[1] = "b", "a" }, "strictly ascending"},
		{"invalid utf-8 term", func(r *raw) { r.terms[2] = "\xff" }, "not UTF-8"},
		{"NaN idf", func(r *raw) { r.idf[1] = float32(math.NaN()) }, "idf NaN"},
		{"negative idf", func(r *raw) { r.idf[1] = -1 }, "idf -1"},
		{"term index out of range", func(r *raw) { r.vectors[1][1].term = 3 }, "term index 3 out of range"},
		{"negative term index", func(r *raw) { r.vectors[0][0].term = -1 }, "term index -1 out of range"},
		{"unsorted term indices", func(r *raw) { r.vectors[1] = []pair{{2, 0.8}, {0, 0.6}} }, "strictly ascending"},
		{"NaN weight", func(r *raw) { r.vectors[0][0].w = float32(math.NaN()) }, "weight NaN"},
		{"infinite weight", func(r *raw) { r.vectors[0][0].w = float32(math.Inf(1)) }, "weight +Inf"},
		{"negative weight", func(r *raw) { r.vectors[1][0].w = -0.6 }, "weight -0.6"},
		{"not normalised", func(r *raw) { r.vectors[0][0].w = 0.5 }, "norm"},
		{"more weights than declared", func(r *raw) { r.nnz = 2 }, "more than the 2 weights declared"},
		{"fewer weights than declared", func(r *raw) { r.nnz = 4; r.trailing = make([]byte, 8) }, "header declares 4"},
		{"checksum", func(r *raw) { r.crcXor = 1 }, "checksum"},
		{"trailing bytes", func(r *raw) { r.trailing = []byte{0} }, "1 unexpected bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := goodRaw()
			tt.mutate(&r)
			_, err := content.Load(bytes.NewReader(r.encode()), threeItems(t), content.Options{})
			if !errors.Is(err, content.ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load() error = %v; want ErrCorrupt containing %q", err, tt.want)
			}
		})
	}
	if _, err := content.Load(bytes.NewReader(goodRaw().encode()), nil, content.Options{}); err == nil {
		t.Error("Load(nil vocabulary) = nil error; want an error")
	}
	if _, err := content.Load(bytes.NewReader(goodRaw().encode()), threeItems(t), content.Options{HalfLifeDays: -1}); err == nil || errors.Is(err, content.ErrCorrupt) {
		t.Errorf("Load(bad options) error = %v; want an options error, not ErrCorrupt", err)
	}
}

// TestLoadTruncatedAndFlipped: every prefix and every single-byte change of a
// real artifact is an ErrCorrupt error, never a panic or a silent success.
func TestLoadTruncatedAndFlipped(t *testing.T) {
	m := handModel(t, content.Options{})
	b := save(t, m)
	for n := range len(b) {
		_, err := content.Load(bytes.NewReader(b[:n]), m.Items(), content.Options{})
		if !errors.Is(err, content.ErrCorrupt) {
			t.Fatalf("Load(first %d of %d bytes) error = %v; want ErrCorrupt", n, len(b), err)
		}
		if n >= len(content.Magic) && !strings.Contains(err.Error(), "truncated") {
			t.Errorf("Load(first %d of %d bytes) error = %v; want it to say truncated", n, len(b), err)
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x5a
		if _, err := content.Load(bytes.NewReader(c), m.Items(), content.Options{}); !errors.Is(err, content.ErrCorrupt) {
			t.Fatalf("Load(byte %d changed) error = %v; want ErrCorrupt", i, err)
		}
	}
}

// FuzzLoad: Load never panics, and whatever it accepts saves back to the same
// bytes.
func FuzzLoad(f *testing.F) {
	f.Add(goodRaw().encode())
	f.Add(save(f, handModel(f, content.Options{})))
	f.Add([]byte(content.Magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		items := threeItems(t)
		if len(b) > 0 && b[len(b)-1]%2 == 0 {
			items, _ = vocab.New([]string{"x", "y", "z", "w"})
		}
		m, err := content.Load(bytes.NewReader(b), items, content.Options{})
		if err != nil {
			if !errors.Is(err, content.ErrCorrupt) {
				t.Fatalf("Load() error = %v; want ErrCorrupt", err)
			}
			return
		}
		if got := save(t, m); !bytes.Equal(got, b) {
			t.Fatalf("Save(Load(b)) differs from b")
		}
		if _, err := m.Recommend(context.Background(), models.Query{History: views("x", "y", "z", "w"), K: 3}); err != nil {
			t.Fatal(err)
		}
	})
}
