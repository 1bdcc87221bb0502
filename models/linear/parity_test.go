package linear_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recserve/recserve/internal/fixtures"
	"github.com/recserve/recserve/models/linear"
)

// parityTol is the largest difference allowed between our probabilities and
// scikit-learn's own. The arithmetic is the same up to summation order, so
// the observed difference is about 1e-16.
const parityTol = 1e-9

var parityModels = []struct{ name, algorithm string }{
	{"logistic", "logistic_regression"},
	{"svm", "linear_svm"},
}

// readCSV reads a numeric parity fixture (fixtures.ReadCSV), failing t on
// error.
func readCSV(t testing.TB, path string, header bool) ([]string, [][]float64) {
	t.Helper()
	names, rows, err := fixtures.ReadCSV(path, header)
	if err != nil {
		t.Fatal(err)
	}
	return names, rows
}

// checkParity compares every row's probability with scikit-learn's in dir.
func checkParity(t *testing.T, dir string) {
	names, inputs := readCSV(t, filepath.Join(dir, "inputs.csv"), true)
	if len(inputs) < 10000 {
		t.Fatalf("%s has %d rows; want at least 10000", dir, len(inputs))
	}
	missing := 0
	for _, row := range inputs {
		for _, v := range row {
			if math.IsNaN(v) {
				missing++
			}
		}
	}
	if frac := float64(missing) / float64(len(inputs)*len(names)); frac < 0.05 {
		t.Errorf("only %.1f%% of inputs are missing; want about 10%%", 100*frac)
	}
	for _, pm := range parityModels {
		t.Run(pm.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, pm.name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := linear.Load(f)
			if err != nil {
				t.Fatalf("Load(%s.json): %v", pm.name, err)
			}
			if got := m.Algorithm(); got != pm.algorithm {
				t.Errorf("Algorithm() = %q; want %q", got, pm.algorithm)
			}
			if got := m.Link(); got != linear.LinkLogistic {
				t.Errorf("Link() = %q; want %q", got, linear.LinkLogistic)
			}
			if got, want := strings.Join(m.Features(), ","), strings.Join(names, ","); got != want {
				t.Errorf("Features() = %s; want %s", got, want)
			}
			_, want := readCSV(t, filepath.Join(dir, pm.name+".pred.csv"), false)
			if len(want) != len(inputs) {
				t.Fatalf("%d predictions for %d inputs", len(want), len(inputs))
			}
			worst, worstRow := 0.0, 0
			out := make([]float64, 1)
			for r, x := range inputs {
				m.PredictRow(x, out)
				d := math.Abs(out[0] - want[r][0])
				if !(d <= parityTol) {
					t.Fatalf("row %d: prediction %v; scikit-learn %v (diff %g)", r, out[0], want[r][0], d)
				}
				if d > worst {
					worst, worstRow = d, r
				}
			}
			t.Logf("%s (%s): %d rows, max abs diff %.3g (row %d)", pm.name, pm.algorithm, len(inputs), worst, worstRow)
		})
	}
}

func TestParityFixtures(t *testing.T) { checkParity(t, "testdata") }

// TestParityRegenerated refits the fixtures with the local scikit-learn, when
// there is one, and checks parity against it.
func TestParityRegenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping scikit-learn regeneration in -short mode")
	}
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import sklearn, numpy").Run(); err != nil {
		t.Skipf("skipping: %s with sklearn and numpy not available (%v); apt-get install python3-sklearn python3-numpy", python, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(python, "../../training/python/linear_parity.py", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("linear_parity.py: %v\n%s", err, out)
	}
	if v, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil {
		t.Logf("regenerated with %s", bytes.TrimSpace(v))
	}
	checkParity(t, dir)
}
