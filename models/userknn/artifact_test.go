package userknn

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

func saved(t *testing.T, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m, hist := clusterModel(t, DefaultOptions())
	b := saved(t, m)
	got, err := Load(bytes.NewReader(b), m.Items(), m.Options())
	if err != nil {
		t.Fatal(err)
	}
	if again := saved(t, got); !bytes.Equal(again, b) {
		t.Error("Save(Load(Save(m))) differs from Save(m)")
	}
	ctx := context.Background()
	for id, h := range hist {
		for _, q := range []models.Query{
			{UserID: id, History: h, K: 5},        // precomputed
			{History: h[:len(h)-1], K: 5},         // online
			{UserID: id, History: h[1:], K: 5},    // online, self excluded
			{UserID: "new", History: h[:2], K: 5}, // online
		} {
			want, err1 := m.Recommend(ctx, q)
			have, err2 := got.Recommend(ctx, q)
			if err1 != nil || err2 != nil || !reflect.DeepEqual(have, want) {
				t.Errorf("loaded Recommend(%s, %d events) = %v, %v; want %v, %v", q.UserID, len(q.History), have, err2, want, err1)
			}
		}
	}
}

// layout locates the sections of a saved artifact.
type layout struct {
	users, events, means, lengths, items, values, ncounts, nusers, sims, crc int
}

func locate(b []byte) layout {
	nu := int(binary.LittleEndian.Uint32(b[8:]))
	ne := int(binary.LittleEndian.Uint32(b[16:]))
	nn := int(binary.LittleEndian.Uint32(b[20:]))
	var l layout
	l.users = headerSize
	off := headerSize
	for range nu {
		off += 2 + int(binary.LittleEndian.Uint16(b[off:]))
	}
	l.events = off
	l.means = l.events + 4*nu
	l.lengths = l.means + 4*nu
	l.items = l.lengths + 4*nu
	l.values = l.items + 4*ne
	l.ncounts = l.values + 4*ne
	l.nusers = l.ncounts + 4*nu
	l.sims = l.nusers + 4*nn
	l.crc = l.sims + 4*nn
	return l
}

// reseal recomputes the checksum after an edit.
func reseal(b []byte) []byte {
	n := len(b) - 4
	binary.LittleEndian.PutUint32(b[n:], crc32.Checksum(b[:n], castagnoli))
	return b
}

func TestLoadRejectsCorruptArtifacts(t *testing.T) {
	m, _ := clusterModel(t, DefaultOptions())
	good := saved(t, m)
	l := locate(good)
	if l.crc+4 != len(good) {
		t.Fatalf("layout: checksum at %d, file is %d bytes", l.crc, len(good))
	}
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.LittleEndian.PutUint32(b[off:], v); return reseal(b) }
	}
	nan := math.Float32bits(float32(math.NaN()))
	tests := []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"bad magic", func(b []byte) []byte { copy(b, "RSIKNN1\n"); return b }, "bad magic"},
		{"empty", func([]byte) []byte { return nil }, "truncated"},
		{"flipped byte", func(b []byte) []byte { b[l.values+5] ^= 0x40; return b }, "checksum mismatch"},
		{"trailing data", func(b []byte) []byte { return append(b, 0) }, "trailing data"},
		{"item count", put32(12, 99), "vocabulary has"},
		{"huge user count", put32(8, 1<<31), "out of range"},
		{"entry sum", put32(16, uint32(len(m.uitem)+1)), "vector lengths"},
		{"item out of range", put32(l.items, 1000), "out of range"},
		{"negative item", put32(l.items, math.MaxUint32), "out of range"},
		{"items not ascending", put32(l.items+4, 0), "ascending"},
		{"NaN value", put32(l.values, nan), "not finite"},
		{"NaN mean", put32(l.means, nan), "not finite"},
		{"neighbour out of range", put32(l.nusers, 12), "out of range"},
		{"own neighbour", put32(l.nusers, 0), "own neighbour"},
		{"NaN similarity", put32(l.sims, nan), "similarity"},
		{"negative similarity", put32(l.sims, math.Float32bits(-0.5)), "similarity"},
		{"unsorted neighbours", put32(l.sims, math.Float32bits(1e-6)), "not in order"},
		{"unsorted user ids", func(b []byte) []byte { b[l.users+2] = 'z'; return reseal(b) }, "sorted"},
		{"empty user id", func(b []byte) []byte {
			// Shrink the first id to length 0: the rest no longer parses as
			// the header says, which must be an error too.
			binary.LittleEndian.PutUint16(b[l.users:], 0)
			return reseal(b)
		}, ""},
	}
	for _, tt := range tests {
		b := tt.edit(bytes.Clone(good))
		_, err := Load(bytes.NewReader(b), m.Items(), m.Options())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Load = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
	// Every proper prefix is an error, never a panic.
	for n := range len(good) {
		if _, err := Load(bytes.NewReader(good[:n]), m.Items(), m.Options()); err == nil {
			t.Fatalf("Load(first %d of %d bytes) = nil error; want an error", n, len(good))
		}
	}
	other, _ := vocab.New([]string{"x"})
	if _, err := Load(bytes.NewReader(good), other, m.Options()); err == nil {
		t.Error("Load(wrong vocabulary) = nil error; want an error")
	}
	if _, err := Load(bytes.NewReader(good), nil, m.Options()); err == nil {
		t.Error("Load(nil vocabulary) = nil error; want an error")
	}
	if _, err := Load(bytes.NewReader(good), m.Items(), Options{}); err == nil {
		t.Error("Load(zero options) = nil error; want an error")
	}
}

// writeVersion writes m as a version directory with the given spec.
func writeVersion(t *testing.T, m *Model, spec models.Spec) string {
	t.Helper()
	dir := t.TempDir()
	if err := m.Items().WriteFile(filepath.Join(dir, vocab.DefaultFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), saved(t, m), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuild(t *testing.T) {
	o := DefaultOptions()
	o.Similarity = Cosine
	m, hist := clusterModel(t, o)
	ctx := context.Background()
	build := func(dir string) (models.Model, error) {
		spec, err := models.ReadSpec(dir)
		if err != nil {
			return nil, err
		}
		return Build(ctx, models.Env{}, models.Version{Name: "userknn", ID: "1", Dir: dir, Spec: spec})
	}

	// Defaults for file and items; params as the trainer writes them.
	dir := writeVersion(t, m, models.Spec{Kind: Kind, Params: o.Params()})
	got, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	q := models.Query{History: hist["l1"][:3], K: 4}
	want, _ := m.Recommend(ctx, q)
	have, err := got.(models.Recommender).Recommend(ctx, q)
	if err != nil || !reflect.DeepEqual(have, want) {
		t.Errorf("built Recommend = %v, %v; want %v", have, err, want)
	}
	if err := got.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}

	// Explicit names.
	dir = writeVersion(t, m, models.Spec{Kind: Kind, File: DefaultFile, Items: vocab.DefaultFile, Params: o.Params()})
	if _, err := build(dir); err != nil {
		t.Errorf("Build(explicit names) = %v", err)
	}

	for _, tt := range []struct {
		name string
		spec models.Spec
		edit func(dir string)
	}{
		{"escaping file", models.Spec{Kind: Kind, File: "../userknn.bin"}, nil},
		{"absolute items", models.Spec{Kind: Kind, Items: "/etc/passwd"}, nil},
		{"missing file", models.Spec{Kind: Kind, File: "nope.bin"}, nil},
		{"missing items", models.Spec{Kind: Kind, Items: "nope.txt"}, nil},
		{"bad params", models.Spec{Kind: Kind, Params: map[string]any{"neighbors": -3}}, nil},
		{"corrupt file", models.Spec{Kind: Kind}, func(dir string) {
			os.WriteFile(filepath.Join(dir, DefaultFile), []byte("RSUKNN1\nshort"), 0o644)
		}},
		{"vocabulary of another model", models.Spec{Kind: Kind}, func(dir string) {
			os.WriteFile(filepath.Join(dir, vocab.DefaultFile), []byte("a\nb\n"), 0o644)
		}},
	} {
		dir := writeVersion(t, m, tt.spec)
		if tt.edit != nil {
			tt.edit(dir)
		}
		if _, err := build(dir); err == nil {
			t.Errorf("Build(%s) = nil error; want an error", tt.name)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Build(cctx, models.Env{}, models.Version{Dir: dir, Spec: models.Spec{Kind: Kind}}); err == nil {
		t.Error("Build(cancelled) = nil error; want an error")
	}
}

// TestLoadRandomCorruption edits random bytes and fixes the checksum, so the
// edits reach validation: Load may accept or reject, but must not panic, and
// what it accepts must answer queries.
func TestLoadRandomCorruption(t *testing.T) {
	m, hist := clusterModel(t, DefaultOptions())
	good := saved(t, m)
	r := rand.New(rand.NewPCG(7, 7))
	for range 3000 {
		b := bytes.Clone(good)
		for range 1 + r.IntN(3) {
			b[r.IntN(len(b)-4)] = byte(r.Uint32())
		}
		got, err := Load(bytes.NewReader(reseal(b)), m.Items(), m.Options())
		if err != nil {
			continue
		}
		for id, h := range hist {
			got.Recommend(context.Background(), models.Query{UserID: id, History: h, K: 3})
			got.Score(context.Background(), models.Query{History: h[:2]}, []string{"litem0"})
		}
	}
}
