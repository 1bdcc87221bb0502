package itemknn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

const day = 86400

func mustVocab(t testing.TB, ids ...string) *vocab.Vocab {
	t.Helper()
	v, err := vocab.New(ids)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tiny is a five-item model with hand-chosen neighbour lists:
//
//	a: b 0.5, c 0.25
//	b: d 0.75, a 0.5
//	c: a 0.25, e 0.25 (a tie, broken by index)
//	d: b 0.75
//	e: (none)
func tinyLists() [][]Neighbor {
	return [][]Neighbor{
		{{1, 0.5}, {2, 0.25}},
		{{3, 0.75}, {0, 0.5}},
		{{0, 0.25}, {4, 0.25}},
		{{1, 0.75}},
		nil,
	}
}

func tiny(t testing.TB, o Options) *Model {
	t.Helper()
	m, err := New(mustVocab(t, "a", "b", "c", "d", "e"), tinyLists(), o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ev(item string, e dataset.Event, ts int64) dataset.Interaction {
	return dataset.Interaction{UserID: "u", ItemID: item, Event: e, Value: 1, Timestamp: ts}
}

func except(ids ...string) func(string) bool {
	return func(id string) bool {
		for _, x := range ids {
			if x == id {
				return false
			}
		}
		return true
	}
}

func sc(id string, score float64) models.Scored { return models.Scored{ItemID: id, Score: score} }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

func sameScored(got, want []models.Scored) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].ItemID != want[i].ItemID || !near(got[i].Score, want[i].Score) {
			return false
		}
	}
	return true
}

func TestRecommend(t *testing.T) {
	ln := math.Log1p
	history := []dataset.Interaction{ev("a", dataset.View, 0), ev("b", dataset.Cart, day)}
	tests := []struct {
		name    string
		opts    Options
		history []dataset.Interaction
		k       int
		allow   func(string) bool
		want    []models.Scored
	}{
		// a (view, 1) and b (cart, 3): d = 3×0.75, a = 3×0.5, b = 1×0.5, c = 1×0.25.
		{"no damping, seen allowed", Options{Damping: NoDamping}, history, 10, nil,
			[]models.Scored{sc("d", 2.25), sc("a", 1.5), sc("b", 0.5), sc("c", 0.25)}},
		{"seen excluded", Options{Damping: NoDamping}, history, 10, except("a", "b"),
			[]models.Scored{sc("d", 2.25), sc("c", 0.25)}},
		{"k limits", Options{Damping: NoDamping}, history, 1, except("a", "b"),
			[]models.Scored{sc("d", 2.25)}},
		{"log damping", Options{}, history, 10, except("a", "b"),
			[]models.Scored{sc("d", ln(3)*0.75), sc("c", ln(1)*0.25)}},
		// Half-life 1 day, newest event at day 1: a's view weighs 1/2.
		{"half-life", Options{Damping: NoDamping, HalfLifeDays: 1}, history, 10, except("a", "b"),
			[]models.Scored{sc("d", 2.25), sc("c", 0.125)}},
		// Repeated events on an item add up before damping: 1 + 5 = 6.
		{"events summed", Options{}, []dataset.Interaction{ev("d", dataset.View, 0), ev("d", dataset.Purchase, 1)}, 10, nil,
			[]models.Scored{sc("b", ln(6)*0.75)}},
		{"custom weights", Options{Damping: NoDamping, Weights: models.EventWeights{dataset.View: 2}}, history, 10, except("a", "b"),
			[]models.Scored{sc("c", 0.5)}},
		// c's neighbours a and e tie at 0.25: the smaller id first.
		{"ties by id", Options{Damping: NoDamping}, []dataset.Interaction{ev("c", dataset.View, 0)}, 10, nil,
			[]models.Scored{sc("a", 0.25), sc("e", 0.25)}},
		{"unknown history items ignored", Options{Damping: NoDamping}, []dataset.Interaction{ev("zz", dataset.View, 0), ev("d", dataset.View, 0)}, 10, nil,
			[]models.Scored{sc("b", 0.75)}},
		{"item without neighbours", Options{}, []dataset.Interaction{ev("e", dataset.View, 0)}, 10, nil, nil},
		{"empty history", Options{}, nil, 10, nil, nil},
		{"k zero", Options{}, history, 0, nil, nil},
		{"nothing allowed", Options{}, history, 10, func(string) bool { return false }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tiny(t, tt.opts)
			q := models.Query{History: tt.history, K: tt.k, Allow: tt.allow}
			got, err := m.Recommend(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !sameScored(got, tt.want) {
				t.Errorf("Recommend(%v) = %v; want %v", tt.name, got, tt.want)
			}
			// Score agrees with Recommend on every returned item.
			ids := make([]string, len(got))
			for i, s := range got {
				ids[i] = s.ItemID
			}
			scores, err := m.Score(context.Background(), q, ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range got {
				if !near(scores[i], s.Score) {
					t.Errorf("Score(%s) = %v; want %v as Recommend", s.ItemID, scores[i], s.Score)
				}
			}
		})
	}
}

func TestRecommendTiesByIDNotIndex(t *testing.T) {
	// Index order z, y, x is the reverse of id order; x and z tie.
	v := mustVocab(t, "z", "y", "x")
	m, err := New(v, [][]Neighbor{nil, {{0, 0.5}, {2, 0.5}}, nil}, Options{Damping: NoDamping})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Recommend(context.Background(), models.Query{History: []dataset.Interaction{ev("y", dataset.View, 0)}, K: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []models.Scored{sc("x", 0.5), sc("z", 0.5)}
	if !sameScored(got, want) {
		t.Errorf("Recommend = %v; want %v", got, want)
	}
}

func TestRecommendAllowIsLazy(t *testing.T) {
	m := tiny(t, Options{})
	calls := 0
	q := models.Query{
		History: []dataset.Interaction{ev("a", dataset.View, 0), ev("b", dataset.Cart, day)},
		K:       1,
		Allow:   func(string) bool { calls++; return true },
	}
	if _, err := m.Recommend(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("Allow called %d times for K=1 with every item allowed; want 1", calls)
	}
}

func TestRecommendReusesScratchCleanly(t *testing.T) {
	m := tiny(t, Options{Damping: NoDamping})
	ctx := context.Background()
	qa := models.Query{History: []dataset.Interaction{ev("a", dataset.View, 0), ev("b", dataset.Purchase, 0)}, K: 5}
	qc := models.Query{History: []dataset.Interaction{ev("c", dataset.View, 0)}, K: 5}
	first, _ := m.Recommend(ctx, qc)
	for range 3 {
		if _, err := m.Recommend(ctx, qa); err != nil {
			t.Fatal(err)
		}
		got, _ := m.Recommend(ctx, qc)
		if !sameScored(got, first) {
			t.Fatalf("Recommend after another request = %v; want %v", got, first)
		}
	}
}

func TestConcurrentRecommend(t *testing.T) {
	m := tiny(t, Options{})
	ctx := context.Background()
	histories := [][]dataset.Interaction{
		{ev("a", dataset.View, 0)},
		{ev("b", dataset.Cart, 0), ev("c", dataset.View, 5)},
		{ev("d", dataset.Purchase, 0)},
	}
	want := make([][]models.Scored, len(histories))
	for i, h := range histories {
		want[i], _ = m.Recommend(ctx, models.Query{History: h, K: 3})
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 200 {
				i := (g + r) % len(histories)
				got, err := m.Recommend(ctx, models.Query{History: histories[i], K: 3})
				if err != nil || !sameScored(got, want[i]) {
					t.Errorf("concurrent Recommend(%d) = %v, %v; want %v", i, got, err, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCanceledContext(t *testing.T) {
	m := tiny(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	q := models.Query{History: []dataset.Interaction{ev("a", dataset.View, 0)}, K: 3}
	if _, err := m.Recommend(ctx, q); !errors.Is(err, context.Canceled) {
		t.Errorf("Recommend(canceled) error = %v; want context.Canceled", err)
	}
	if _, err := m.Score(ctx, q, []string{"b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Score(canceled) error = %v; want context.Canceled", err)
	}
	if _, err := m.SimilarItems(ctx, models.SimilarQuery{ItemID: "a", K: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("SimilarItems(canceled) error = %v; want context.Canceled", err)
	}
}

func TestScore(t *testing.T) {
	m := tiny(t, Options{Damping: NoDamping})
	q := models.Query{History: []dataset.Interaction{ev("a", dataset.View, 0), ev("b", dataset.Cart, 0)}}
	got, err := m.Score(context.Background(), q, []string{"c", "unknown", "d", "e", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.25, 0, 2.25, 0, 1.5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Score = %v; want %v", got, want)
	}
	got, _ = m.Score(context.Background(), models.Query{}, []string{"a", "b"})
	if !reflect.DeepEqual(got, []float64{0, 0}) {
		t.Errorf("Score(empty history) = %v; want [0 0]", got)
	}
}

func TestSimilarItems(t *testing.T) {
	m := tiny(t, Options{})
	tests := []struct {
		q    models.SimilarQuery
		want []models.Scored
	}{
		{models.SimilarQuery{ItemID: "b", K: 10}, []models.Scored{sc("d", 0.75), sc("a", 0.5)}},
		{models.SimilarQuery{ItemID: "b", K: 1}, []models.Scored{sc("d", 0.75)}},
		{models.SimilarQuery{ItemID: "b", K: 10, Allow: except("d")}, []models.Scored{sc("a", 0.5)}},
		{models.SimilarQuery{ItemID: "c", K: 10}, []models.Scored{sc("a", 0.25), sc("e", 0.25)}},
		{models.SimilarQuery{ItemID: "e", K: 10}, nil},
		{models.SimilarQuery{ItemID: "b", K: 0}, nil},
	}
	for _, tt := range tests {
		got, err := m.SimilarItems(context.Background(), tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if !sameScored(got, tt.want) {
			t.Errorf("SimilarItems(%s, K=%d) = %v; want %v", tt.q.ItemID, tt.q.K, got, tt.want)
		}
	}
	_, err := m.SimilarItems(context.Background(), models.SimilarQuery{ItemID: "nope", K: 3})
	if !errors.Is(err, models.ErrNotFound) {
		t.Errorf("SimilarItems(unknown) error = %v; want ErrNotFound", err)
	}
}

func TestNewRejects(t *testing.T) {
	v := mustVocab(t, "a", "b", "c")
	tests := []struct {
		name  string
		lists [][]Neighbor
		opts  Options
		want  string
	}{
		{"list count", [][]Neighbor{nil, nil}, Options{}, "2 neighbour lists for 3 items"},
		{"out of range", [][]Neighbor{{{3, 1}}, nil, nil}, Options{}, "out of range"},
		{"negative index", [][]Neighbor{{{-1, 1}}, nil, nil}, Options{}, "out of range"},
		{"self", [][]Neighbor{nil, {{1, 1}}, nil}, Options{}, "the item itself"},
		{"duplicate", [][]Neighbor{{{1, 0.5}, {1, 0.5}}, nil, nil}, Options{}, "duplicate"},
		{"NaN", [][]Neighbor{{{1, float32(math.NaN())}}, nil, nil}, Options{}, "not finite"},
		{"Inf", [][]Neighbor{{{1, float32(math.Inf(1))}}, nil, nil}, Options{}, "not finite"},
		{"unsorted", [][]Neighbor{{{1, 0.25}, {2, 0.5}}, nil, nil}, Options{}, "not sorted"},
		{"tie unsorted", [][]Neighbor{{{2, 0.5}, {1, 0.5}}, nil, nil}, Options{}, "not sorted"},
		{"too many", [][]Neighbor{{{1, 0.5}, {2, 0.4}, {0, 0.3}}, nil, nil}, Options{}, "at most 2"},
		{"half-life", nil, Options{HalfLifeDays: -1}, "half_life_days"},
		{"damping", nil, Options{Damping: "square"}, "damping"},
		{"weight", nil, Options{Weights: models.EventWeights{dataset.View: math.NaN()}}, "event weight"},
	}
	for _, tt := range tests {
		lists := tt.lists
		if lists == nil {
			lists = make([][]Neighbor, 3)
		}
		_, err := New(v, lists, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%s) error = %v; want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := tiny(t, Options{HalfLifeDays: 2})
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if want := 24 + 4*5 + 8*7; buf.Len() != want {
		t.Errorf("artifact size = %d; want 24 + 4N + 8E = %d", buf.Len(), want)
	}
	first := bytes.Clone(buf.Bytes())
	got, err := Load(&buf, m.Items(), m.Options())
	if err != nil {
		t.Fatal(err)
	}
	for i := range int32(5) {
		if !reflect.DeepEqual(got.Neighbors(i), m.Neighbors(i)) {
			t.Errorf("Neighbors(%d) after round trip = %v; want %v", i, got.Neighbors(i), m.Neighbors(i))
		}
	}
	var again bytes.Buffer
	if err := got.Save(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), first) {
		t.Error("Save(Load(Save(m))) differs from Save(m)")
	}
	empty, err := New(mustVocab(t), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := empty.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(&buf, mustVocab(t), Options{}); err != nil {
		t.Errorf("Load(empty model) error = %v", err)
	}
}

// rawArtifact encodes an artifact byte by byte, with a correct checksum, so a
// test can break exactly one rule.
func rawArtifact(magic string, n uint32, total uint64, lists [][]Neighbor) []byte {
	return withCRC(rawBody(magic, n, total, lists))
}

// withCRC appends the checksum.
func withCRC(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// rawBody is an artifact without its checksum.
func rawBody(magic string, n uint32, total uint64, lists [][]Neighbor) []byte {
	var b []byte
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, n)
	b = binary.LittleEndian.AppendUint64(b, total)
	for _, l := range lists {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(l)))
		for _, nb := range l {
			b = binary.LittleEndian.AppendUint32(b, uint32(nb.Index))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(nb.Sim))
		}
	}
	return b
}

// dropLastEntry removes the last neighbour entry of a tinyLists body: item
// 3's only entry, before item 4's zero count.
func dropLastEntry(b []byte) []byte {
	return append(b[:len(b)-12:len(b)-12], b[len(b)-4:]...)
}

func TestLoadRejects(t *testing.T) {
	v := mustVocab(t, "a", "b", "c", "d", "e")
	good := rawArtifact(Magic, 5, 7, tinyLists())
	if _, err := Load(bytes.NewReader(good), v, Options{}); err != nil {
		t.Fatalf("Load(rawArtifact) error = %v", err)
	}
	flipped := bytes.Clone(good)
	flipped[30] ^= 1 // inside a similarity: still valid, but the checksum fails
	nan := tinyLists()
	nan[0][0].Sim = float32(math.NaN())
	bad := func(mod func([][]Neighbor)) [][]Neighbor {
		l := tinyLists()
		mod(l)
		return l
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "header: truncated file"},
		{"bad magic", rawArtifact("RSIKNN2\n", 5, 7, tinyLists()), "bad magic"},
		{"json", []byte(`{"items":[{"id":"a","neighbors":[]}]}`), "bad magic"},
		{"item count", rawArtifact(Magic, 4, 7, tinyLists()[:4]), "artifact has 4 items, vocabulary has 5"},
		{"impossible total", rawArtifact(Magic, 5, 21, tinyLists()), "more than possible"},
		{"longer than the header says", rawArtifact(Magic, 5, 6, tinyLists()), "8 trailing bytes"},
		{"shorter than the header says", rawArtifact(Magic, 5, 8, tinyLists()), "header promises 108: truncated file"},
		// Sizes agree with the header, the records do not.
		{"counts exceed total", withCRC(dropLastEntry(rawBody(Magic, 5, 6, tinyLists()))), "exceed the header's total"},
		{"counts below total", withCRC(append(rawBody(Magic, 5, 8, tinyLists()), make([]byte, 8)...)), "sum to 7, header says 8"},
		{"huge count", rawArtifact(Magic, 5, 5, [][]Neighbor{make([]Neighbor, 5), nil, nil, nil, nil}), "at most 4"},
		{"index out of range", rawArtifact(Magic, 5, 7, bad(func(l [][]Neighbor) { l[3][0].Index = 9 })), "index 9 out of range"},
		{"self", rawArtifact(Magic, 5, 7, bad(func(l [][]Neighbor) { l[3][0].Index = 3 })), "the item itself"},
		{"NaN similarity", rawArtifact(Magic, 5, 7, nan), "not finite"},
		{"unsorted", rawArtifact(Magic, 5, 7, bad(func(l [][]Neighbor) { l[1][0].Sim = 0.1 })), "not sorted"},
		{"checksum", flipped, "checksum mismatch"},
		{"trailing bytes", append(bytes.Clone(good), 0), "trailing bytes"},
	}
	for _, tt := range tests {
		_, err := Load(bytes.NewReader(tt.data), v, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) error = %v; want one containing %q", tt.name, err, tt.want)
		}
	}
	// Every proper prefix is a truncated file.
	for n := range len(good) {
		_, err := Load(bytes.NewReader(good[:n]), v, Options{})
		if err == nil || !errors.Is(err, errTruncated) {
			t.Errorf("Load(first %d of %d bytes) error = %v; want a truncated-file error", n, len(good), err)
		}
	}
}

// FuzzLoad checks that Load never panics and that whatever it accepts saves
// back to the same bytes.
func FuzzLoad(f *testing.F) {
	f.Add(rawArtifact(Magic, 5, 7, tinyLists()))
	f.Add(rawArtifact(Magic, 5, 0, make([][]Neighbor, 5)))
	f.Add([]byte(Magic))
	v := mustVocab(f, "a", "b", "c", "d", "e")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data), v, Options{})
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Errorf("Save(Load(data)) != data")
		}
	})
}

func writeVersion(t *testing.T, m *Model, spec string) string {
	t.Helper()
	dir := t.TempDir()
	if err := m.Items().WriteFile(filepath.Join(dir, vocab.DefaultFile)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, models.SpecFile), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuild(t *testing.T) {
	m := tiny(t, Options{})
	tests := []struct {
		name    string
		spec    string
		wantErr string
		check   func(t *testing.T, got *Model)
	}{
		{"defaults", "kind: itemknn\n", "", func(t *testing.T, got *Model) {
			if o := got.Options(); o.Damping != LogDamping || o.HalfLifeDays != 0 || o.Weights[dataset.Purchase] != 5 {
				t.Errorf("Build(defaults) options = %+v; want log damping, no decay, default weights", o)
			}
		}},
		{"params", "kind: itemknn\nfile: itemknn.bin\nitems: items.txt\nparams:\n  half_life_days: 0.5\n  damping: none\n  event_weights: view:2,purchase:7\n  neighbors: 50\n", "",
			func(t *testing.T, got *Model) {
				o := got.Options()
				if o.Damping != NoDamping || o.HalfLifeDays != 0.5 || o.Weights[dataset.View] != 2 || o.Weights[dataset.Purchase] != 7 {
					t.Errorf("Build(params) options = %+v; want none, 0.5, view:2, purchase:7", o)
				}
			}},
		{"missing file", "kind: itemknn\nfile: other.bin\n", "other.bin", nil},
		{"missing items", "kind: itemknn\nitems: other.txt\n", "other.txt", nil},
		{"escaping file", "kind: itemknn\nfile: ../itemknn.bin\n", "escapes", nil},
		{"bad half-life", "kind: itemknn\nparams:\n  half_life_days: -1\n", "half_life_days", nil},
		{"bad half-life type", "kind: itemknn\nparams:\n  half_life_days: [1]\n", "half_life_days", nil},
		{"bad damping", "kind: itemknn\nparams:\n  damping: sqrt\n", "damping", nil},
		{"bad weights", "kind: itemknn\nparams:\n  event_weights: click:1\n", "event_weights", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeVersion(t, m, tt.spec)
			spec, err := models.ReadSpec(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Build(context.Background(), models.Env{}, models.Version{Name: "knn", ID: "1", Dir: dir, Spec: spec})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build(%s) error = %v; want one containing %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			km := got.(*Model)
			tt.check(t, km)
			if r := models.Roles(km); !reflect.DeepEqual(r, []string{"recommender", "scorer", "similar_items"}) {
				t.Errorf("Roles = %v; want recommender, scorer, similar_items", r)
			}
			if _, err := km.SimilarItems(context.Background(), models.SimilarQuery{ItemID: "missing", K: 1}); !errors.Is(err, models.ErrNotFound) {
				t.Errorf("SimilarItems(missing) error = %v; want ErrNotFound", err)
			}
			sim, _ := km.SimilarItems(context.Background(), models.SimilarQuery{ItemID: "b", K: 1})
			if want := []models.Scored{sc("d", 0.75)}; !sameScored(sim, want) {
				t.Errorf("SimilarItems(b) = %v; want %v", sim, want)
			}
		})
	}
	// A vocabulary that does not match the artifact.
	dir := writeVersion(t, m, "kind: itemknn\n")
	if err := os.WriteFile(filepath.Join(dir, vocab.DefaultFile), []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, _ := models.ReadSpec(dir)
	if _, err := Build(context.Background(), models.Env{}, models.Version{Dir: dir, Spec: spec}); err == nil || !strings.Contains(err.Error(), "vocabulary has 2") {
		t.Errorf("Build(mismatched vocabulary) error = %v; want the item counts", err)
	}
}
