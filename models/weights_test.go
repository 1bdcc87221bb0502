package models

import (
	"testing"

	"github.com/recserve/recserve/dataset"
)

func TestParseEventWeights(t *testing.T) {
	w, err := ParseEventWeights("view:2, purchase:10")
	if err != nil {
		t.Fatal(err)
	}
	if w[dataset.View] != 2 || w[dataset.Purchase] != 10 || w[dataset.Cart] != 3 {
		t.Errorf("ParseEventWeights = %v; want view 2, purchase 10, cart default 3", w)
	}
	for _, bad := range []string{"view", "click:1", "view:-1", "view:x"} {
		if _, err := ParseEventWeights(bad); err == nil {
			t.Errorf("ParseEventWeights(%q) = nil error; want an error", bad)
		}
	}
	back, err := ParseEventWeights(w.String())
	if err != nil || back.String() != w.String() {
		t.Errorf("ParseEventWeights(%q) = %v, %v; want a round trip", w.String(), back, err)
	}
}
