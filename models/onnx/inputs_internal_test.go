package onnx

import (
	"reflect"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// ev is a history event.
func ev(item string, e dataset.Event, value float64) dataset.Interaction {
	return dataset.Interaction{UserID: "u", ItemID: item, Event: e, Value: value}
}

func testVocab(t *testing.T) *vocab.Vocab {
	t.Helper()
	v, err := vocab.New([]string{"a", "b", "c", "d", "e"})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestUserVectorRow(t *testing.T) {
	items := testVocab(t)
	custom, err := models.ParseEventWeights("view:0.5,cart:2,purchase:10,rating:0.1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		history []dataset.Interaction
		w       models.EventWeights
		want    []float32
		known   bool
	}{
		{"empty", nil, models.DefaultEventWeights(), []float32{0, 0, 0, 0, 0}, false},
		{"unknown items only", []dataset.Interaction{ev("zz", dataset.Purchase, 1)}, models.DefaultEventWeights(), []float32{0, 0, 0, 0, 0}, false},
		{"default weights add up", []dataset.Interaction{
			ev("a", dataset.View, 1), ev("a", dataset.Cart, 1), ev("c", dataset.Purchase, 1),
			ev("zz", dataset.View, 1), ev("e", dataset.Rating, 4), ev("a", dataset.View, 1),
		}, models.DefaultEventWeights(), []float32{1 + 3 + 1, 0, 5, 0, 4}, true},
		{"custom weights", []dataset.Interaction{
			ev("b", dataset.View, 1), ev("b", dataset.Cart, 1), ev("d", dataset.Purchase, 1), ev("e", dataset.Rating, 5),
		}, custom, []float32{0, 2.5, 0, 10, 0.5}, true},
		{"zero weight still known", []dataset.Interaction{ev("b", dataset.View, 1)}, models.EventWeights{}, []float32{0, 0, 0, 0, 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := models.Query{History: tt.history}
			got, known := userVectorRow(&q, items, tt.w)
			if !reflect.DeepEqual(got, tt.want) || known != tt.known {
				t.Errorf("userVectorRow(%v) = %v, %v; want %v, %v", tt.history, got, known, tt.want, tt.known)
			}
		})
	}
}

func TestSequenceRow(t *testing.T) {
	items := testVocab(t) // a..e are indices 0..4, inputs 1..5
	def, err := parseConfig(models.Spec{Kind: Kind, Signature: Sequence})
	if err != nil {
		t.Fatal(err)
	}
	noDedupe, err := parseConfig(models.Spec{Kind: Kind, Signature: Sequence, Params: map[string]any{"dedupe_consecutive": false}})
	if err != nil {
		t.Fatal(err)
	}
	purchases, err := parseConfig(models.Spec{Kind: Kind, Signature: Sequence, Params: map[string]any{"events": "purchase, rating"}})
	if err != nil {
		t.Fatal(err)
	}
	v, c, p, r := dataset.View, dataset.Cart, dataset.Purchase, dataset.Rating
	tests := []struct {
		name    string
		cfg     config
		l       int
		history []dataset.Interaction
		want    []int64
		known   bool
	}{
		{"empty is all padding", def, 4, nil, []int64{0, 0, 0, 0}, false},
		{"vocabulary offset and left padding", def, 4, []dataset.Interaction{ev("a", v, 1), ev("c", c, 1)}, []int64{0, 0, 1, 3}, true},
		{"unknown items skipped", def, 4, []dataset.Interaction{ev("x", v, 1), ev("e", v, 1), ev("y", p, 1)}, []int64{0, 0, 0, 5}, true},
		{"ratings not counted by default", def, 3, []dataset.Interaction{ev("a", r, 5), ev("b", v, 1)}, []int64{0, 0, 2}, true},
		{"only ratings is cold", def, 3, []dataset.Interaction{ev("a", r, 5)}, []int64{0, 0, 0}, false},
		{"consecutive repeats collapsed", def, 5, []dataset.Interaction{
			ev("a", v, 1), ev("a", c, 1), ev("a", p, 1), ev("b", v, 1), ev("a", v, 1),
		}, []int64{0, 0, 1, 2, 1}, true},
		{"repeats across an unknown item collapsed", def, 3, []dataset.Interaction{ev("a", v, 1), ev("zz", v, 1), ev("a", v, 1)}, []int64{0, 0, 1}, true},
		{"repeats across a filtered event collapsed", purchases, 3, []dataset.Interaction{ev("a", p, 1), ev("b", v, 1), ev("a", p, 1)}, []int64{0, 0, 1}, true},
		{"repeats kept without dedupe", noDedupe, 4, []dataset.Interaction{ev("a", v, 1), ev("a", c, 1), ev("b", v, 1)}, []int64{0, 1, 1, 2}, true},
		{"truncated to the last L", def, 3, []dataset.Interaction{
			ev("a", v, 1), ev("b", v, 1), ev("c", v, 1), ev("d", v, 1), ev("e", v, 1),
		}, []int64{3, 4, 5}, true},
		{"exactly L", def, 2, []dataset.Interaction{ev("d", v, 1), ev("e", v, 1)}, []int64{4, 5}, true},
		{"event filter", purchases, 4, []dataset.Interaction{
			ev("a", v, 1), ev("b", p, 1), ev("c", c, 1), ev("d", r, 3),
		}, []int64{0, 0, 2, 4}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := models.Query{History: tt.history}
			got, known := sequenceRow(&q, items, &tt.cfg, tt.l)
			if !reflect.DeepEqual(got, tt.want) || known != tt.known {
				t.Errorf("sequenceRow(%v, L=%d) = %v, %v; want %v, %v", tt.history, tt.l, got, known, tt.want, tt.known)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		spec    models.Spec
		wantErr string // "" = valid
	}{
		{"user_vector defaults", models.Spec{Signature: UserVector}, ""},
		{"no signature", models.Spec{}, "signature is required"},
		{"unknown signature", models.Spec{Signature: "images"}, `signature "images"`},
		{"unknown param", models.Spec{Signature: UserVector, Params: map[string]any{"max_batchsize": 8}}, "unknown key(s) max_batchsize"},
		{"param of another signature", models.Spec{Signature: Features, Params: map[string]any{"weights": "view:1"}}, "unknown key(s) weights"},
		{"bad weights", models.Spec{Signature: UserVector, Params: map[string]any{"weights": "view=1"}}, "params.weights"},
		{"bad events", models.Spec{Signature: Sequence, Params: map[string]any{"events": "view,wishlist"}}, "params.events"},
		{"bad dedupe", models.Spec{Signature: Sequence, Params: map[string]any{"dedupe_consecutive": "maybe"}}, "params.dedupe_consecutive"},
		{"dedupe as text", models.Spec{Signature: Sequence, Params: map[string]any{"dedupe_consecutive": "false"}}, ""},
		{"max_len zero", models.Spec{Signature: Sequence, Params: map[string]any{"max_len": 0}}, "params.max_len"},
		{"negative threads", models.Spec{Signature: Features, Params: map[string]any{"intra_op_threads": -1}}, "params.intra_op_threads"},
		{"batching", models.Spec{Signature: Features, Params: map[string]any{"max_batch_size": 64, "max_queue_delay_us": 100, "max_queue_size": 10, "runners": 1}}, ""},
		{"zero runners", models.Spec{Signature: Features, Params: map[string]any{"runners": 0}}, "params.runners"},
		{"huge batch", models.Spec{Signature: Features, Params: map[string]any{"max_batch_size": 1 << 30}}, "params.max_batch_size"},
		{"fractional queue", models.Spec{Signature: Features, Params: map[string]any{"max_queue_size": 1.5}}, "params.max_queue_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.spec)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("parseConfig(%+v) = %v; want no error", tt.spec, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("parseConfig(%+v) = %v; want an error containing %q", tt.spec, err, tt.wantErr)
			}
		})
	}
}
