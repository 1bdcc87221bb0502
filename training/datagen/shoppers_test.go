package datagen

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/recserve/recserve/dataset"
)

// TestGenerateGolden pins the bytes of a generated data set: the ground
// truth (Shoppers) and the generator share the tastes and funnel code, and a
// refactor of that code must not change what Generate writes. Update the
// hashes only for a deliberate change of the generative process.
func TestGenerateGolden(t *testing.T) {
	ds, err := Generate(Config{Users: 300, Items: 200, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := dataset.Write(dir, ds); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"interactions.csv": "dc3ae243314cd96fac1b9e6667efee542d69c2e4f1b0b725920364bcc9823f95",
		"items.csv":        "021ee8434548b676b00607305c65c6a7511ac66a410e7af1a9a1376df566f92a",
		"users.csv":        "b825e78698295d6d3f4856481419744d91a4b459c7459120ccc3f69574a604db",
	}
	for name, h := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != h {
			t.Errorf("sha256(%s) = %s; want %s (the generator's output changed)", name, got, h)
		}
	}
}

// TestShopperTastesAreTheGenerators checks that Shopper draws, for every
// user, exactly the tastes the generator used for that user.
func TestShopperTastesAreTheGenerators(t *testing.T) {
	w, err := newWorld(small)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewShoppers(small)
	if err != nil {
		t.Fatal(err)
	}
	g := newUserGen(w)
	width := max(5, len("300"))
	for u := range w.cfg.Users {
		row, _, _ := g.user(u, width)
		sh, err := s.Shopper(row.ID)
		if err != nil {
			t.Fatalf("Shopper(%q) error = %v", row.ID, err)
		}
		got, want := &sh.t, &g.tastes
		if !slices.Equal(got.catW, want.catW) || !slices.Equal(got.catAff, want.catAff) ||
			!slices.Equal(got.favBrands, want.favBrands) || got.nonFavBrand != want.nonFavBrand ||
			got.priceZ != want.priceZ || got.priceTol != want.priceTol || got.propensity != want.propensity {
			t.Fatalf("Shopper(%q).tastes = %+v; want the generator's %+v", row.ID, *got, *want)
		}
		if seg := got.segment(); seg != row.Attrs["segment"] {
			t.Fatalf("Shopper(%q) segment = %q; want users.csv's %q", row.ID, seg, row.Attrs["segment"])
		}
	}
}

func TestShopperUnknownUser(t *testing.T) {
	s, err := NewShoppers(small)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "u", "u0", "u00000", "u00301", "u1", "u000001", "x00001", "u-0001", "u+0001"} {
		if _, err := s.Shopper(id); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("Shopper(%q) error = %v; want ErrUnknownUser", id, err)
		}
	}
	for _, id := range []string{"u00001", "u00300"} {
		if _, err := s.Shopper(id); err != nil {
			t.Errorf("Shopper(%q) error = %v; want nil", id, err)
		}
	}
	sh, _ := s.Shopper("u00001")
	if a, p, ok := sh.Fit("i99999"); ok || a != 0 || p != 0 {
		t.Errorf("Fit(unknown item) = %v, %v, %v; want 0, 0, false", a, p, ok)
	}
}

func TestShoppersCheck(t *testing.T) {
	s, err := NewShoppers(small)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Generate(small)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Generate(Config{Users: 300, Items: 200, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		d    *dataset.Dataset
		ok   bool
	}{
		{"same", ds, true},
		{"items only", &dataset.Dataset{Items: ds.Items}, true},
		{"other seed", other, false},
		{"fewer users", &dataset.Dataset{Items: ds.Items, Users: ds.Users[:10]}, false},
		{"fewer items", &dataset.Dataset{Items: ds.Items[:100]}, false},
	}
	for _, tt := range tests {
		err := s.Check(tt.d)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, ErrMismatch) {
			t.Errorf("Check(%s) = %v; want ok %v (ErrMismatch otherwise)", tt.name, err, tt.ok)
		}
	}
}

// TestShopperFit checks the ground truth against the data the generator
// wrote from it: a shopper is drawn to its top category, views concentrate
// on attractive items, and the purchase probability predicts the purchases.
func TestShopperFit(t *testing.T) {
	w, ds := demo()
	s, err := NewShoppers(Config{})
	if err != nil {
		t.Fatal(err)
	}
	shoppers := make(map[string]*Shopper, len(ds.Users))
	for _, u := range ds.Users {
		if shoppers[u.ID], err = s.Shopper(u.ID); err != nil {
			t.Fatal(err)
		}
	}

	// Items of the top category attract more than items of the others, for
	// (nearly) every user.
	worse := 0
	for _, sh := range shoppers {
		top := slices.Index(sh.t.catAff, 1)
		var in, out float64
		var nIn, nOut int
		for i := range w.items {
			a, _, _ := sh.Fit(w.items[i].ID)
			if int(w.items[i].cat) == top {
				in += a
				nIn++
			} else {
				out += a
				nOut++
			}
		}
		if sh.Affinity(w.cats[top].spec.slug) != 1 {
			t.Fatalf("Affinity(top category) = %v; want 1", sh.Affinity(w.cats[top].spec.slug))
		}
		if in/float64(nIn) <= out/float64(nOut) {
			worse++
		}
	}
	if worse > 0 {
		t.Errorf("users whose top category attracts less than the others on average = %d; want 0", worse)
	}

	// What shoppers viewed is far more attractive than a random item, and
	// the purchase probability of the views adds up to about the purchases.
	var viewA, randA, expBuys float64
	var views, buys int
	for k, in := range ds.Interactions {
		sh := shoppers[in.UserID]
		switch in.Event {
		case dataset.View:
			a, p, _ := sh.Fit(in.ItemID)
			viewA += a
			expBuys += p
			views++
			ra, _, _ := sh.Fit(w.items[k%len(w.items)].ID)
			randA += ra
		case dataset.Purchase:
			buys++
		}
	}
	viewA /= float64(views)
	randA /= float64(views)
	t.Logf("mean attraction: viewed %.3f, random %.3f; purchases %d, expected from views %.0f", viewA, randA, buys, expBuys)
	if viewA < 3*randA {
		t.Errorf("mean attraction of viewed items = %.3f, of random items = %.3f; want ≥ 3×", viewA, randA)
	}
	// The generator's returning shoppers buy more than a first view
	// predicts, so the expectation is a little low; within 25% is agreement.
	if r := float64(buys) / expBuys; math.Abs(r-1) > 0.25 {
		t.Errorf("purchases / Σ purchase probability of views = %.3f; want within 25%% of 1", r)
	}
}
