package linear_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/recserve/recserve/models/linear"
)

// std is a standardised two-feature model: z = ((a-10)/2, (b-100)/50),
// margin = 0.5 + 2*z_a - z_b.
const std = `{"model":"test","features":["a","b"],"coefficients":[2,-1],"intercept":0.5,` +
	`"mean":[10,100],"scale":[2,50]LINK}`

func mustLoad(t testing.TB, s string) *linear.RowModel {
	t.Helper()
	m, err := linear.Load(strings.NewReader(s))
	if err != nil {
		t.Fatalf("Load(%s): %v", s, err)
	}
	return m
}

func TestPredict(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	identity := strings.Replace(std, "LINK", `,"link":"identity"`, 1)
	imputed := strings.Replace(std, "LINK", `,"impute":[0,200],"link":"identity"`, 1)
	raw := `{"features":["a","b"],"coefficients":[2,-1],"intercept":0.5,"link":"identity"}`
	rawNulls := `{"features":["a","b"],"coefficients":[2,-1],"intercept":0.5,"mean":null,"scale":null,"impute":null,"link":"identity"}`
	rawImputed := `{"features":["a","b"],"coefficients":[2,-1],"intercept":0.5,"impute":[1,4],"link":"identity"}`
	logistic := strings.Replace(std, "LINK", "", 1)
	one := `{"features":["a"],"coefficients":[1],"intercept":LOG3}`
	one = strings.Replace(one, "LOG3", fmt.Sprint(math.Log(3)), 1)
	unit := `{"features":["a","b"],"coefficients":[1,1],"intercept":0,"link":null}`
	tests := []struct {
		name  string
		model string
		x     []float64
		want  float64
	}{
		{"standardised", identity, []float64{12, 150}, 1.5},
		{"standardised below mean", identity, []float64{8, 50}, 0.5 - 2 + 1},
		{"missing imputes the mean", identity, []float64{nan, 0}, 0.5 + 0 + 2},
		{"beyond len(x) is missing", identity, []float64{8}, 0.5 - 2},
		{"nil row is all missing", identity, nil, 0.5},
		{"extra values ignored", identity, []float64{12, 150, 999}, 1.5},
		{"explicit impute", imputed, []float64{nan, nan}, 0.5 + 2*-5 - 2},
		{"explicit impute beyond len(x)", imputed, []float64{12}, 0.5 + 2 - 2},
		{"present value ignores impute", imputed, []float64{12, 150}, 1.5},
		{"no standardisation", raw, []float64{3, 4}, 0.5 + 6 - 4},
		{"no standardisation imputes 0", raw, []float64{3, nan}, 6.5},
		{"null optional keys are absent", rawNulls, []float64{3, nan}, 6.5},
		{"raw explicit impute", rawImputed, nil, 0.5 + 2 - 4},
		{"logistic link", logistic, []float64{12, 150}, 1 / (1 + math.Exp(-1.5))},
		{"logistic of log 3 is 3/4", one, []float64{0}, 0.75},
		{"margin +1000 saturates to 1", unit, []float64{1000, 0}, 1},
		{"margin -1000 underflows to 0", unit, []float64{-1000, 0}, 0},
		{"margin -30", unit, []float64{-30, 0}, 9.357622968840175e-14},
		{"margin -700 is tiny, not 0", unit, []float64{-700, 0}, math.Exp(-700)},
		{"+Inf input", unit, []float64{inf, 0}, 1},
		{"-Inf input", unit, []float64{-inf, 0}, 0},
		{"opposite infinities give NaN", unit, []float64{inf, -inf}, nan},
		{"huge finite inputs", unit, []float64{math.MaxFloat64, math.MaxFloat64}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustLoad(t, tt.model)
			got := m.Predict(tt.x)
			if math.IsNaN(tt.want) {
				if !math.IsNaN(got) {
					t.Errorf("Predict(%v) = %v; want NaN", tt.x, got)
				}
				return
			}
			if d := math.Abs(got - tt.want); !(d <= 1e-15*math.Max(1, math.Abs(tt.want))) || (tt.want != 0 && got == 0) {
				t.Errorf("Predict(%v) = %v; want %v", tt.x, got, tt.want)
			}
			out := []float64{-1}
			m.PredictRow(tt.x, out)
			if !(out[0] == got || math.IsNaN(got) && math.IsNaN(out[0])) {
				t.Errorf("PredictRow(%v) = %v; Predict = %v", tt.x, out[0], got)
			}
		})
	}
}

func TestAccessors(t *testing.T) {
	m := mustLoad(t, strings.Replace(std, "LINK", "", 1))
	if got := strings.Join(m.Features(), ","); got != "a,b" {
		t.Errorf("Features() = %s; want a,b", got)
	}
	if got := m.NumOutputs(); got != 1 {
		t.Errorf("NumOutputs() = %d; want 1", got)
	}
	if got := m.Algorithm(); got != "test" {
		t.Errorf("Algorithm() = %q; want test", got)
	}
	if got := m.Link(); got != linear.LinkLogistic {
		t.Errorf("Link() = %q; want %q", got, linear.LinkLogistic)
	}
	if got := m.Margin([]float64{12, 150}); got != 1.5 {
		t.Errorf("Margin = %v; want 1.5", got)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
}

func TestPredictRowShapes(t *testing.T) {
	m := mustLoad(t, strings.Replace(std, "LINK", `,"link":"identity"`, 1))
	m.PredictRow([]float64{12, 150}, nil) // must not panic
	out := []float64{7, 7, 7}
	m.PredictRow([]float64{12, 150}, out)
	if out[0] != 1.5 || !math.IsNaN(out[1]) || !math.IsNaN(out[2]) {
		t.Errorf("PredictRow into 3 slots = %v; want [1.5 NaN NaN]", out)
	}
}

// TestConcurrentPredict exercises the model from many goroutines, for -race.
func TestConcurrentPredict(t *testing.T) {
	m := mustLoad(t, strings.Replace(std, "LINK", "", 1))
	want := m.Predict([]float64{1, 2})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			out := make([]float64, 1)
			for range 1000 {
				m.PredictRow([]float64{1, 2}, out)
				if out[0] != want {
					t.Errorf("PredictRow = %v; want %v", out[0], want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// valid is a complete, valid linear.json that the error cases edit.
const valid = `{"model":"logistic_regression","features":["a","b"],"coefficients":[2,-1],"intercept":0.5,` +
	`"mean":[10,100],"scale":[2,50],"impute":[0,200],"link":"logistic"}`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name     string
		old, new string // replace old by new in valid; old "" replaces all of it
		msg      string
	}{
		{"empty input", "", ``, "truncated JSON"},
		{"truncated", "", `{"features":["a"`, "truncated JSON"},
		{"not an object", "", `[1,2]`, "want a JSON object"},
		{"a bare number", "", `3`, "want a JSON object"},
		{"syntax error", `"intercept":0.5`, `"intercept":0.5.1`, "byte "},
		{"trailing data", `"logistic"}`, `"logistic"} {}`, "after top-level value"},
		{"unknown key", `"link":`, `"bias":`, `unknown key "bias"`},
		{"keys are case-sensitive", `"link":`, `"Link":`, `unknown key "Link"`},
		{"repeated key", `"link":"logistic"`, `"link":"logistic","intercept":1`, "intercept: key appears more than once"},
		{"features absent", `"features":["a","b"],`, ``, "features: required"},
		{"features null", `["a","b"]`, `null`, "features: required"},
		{"features empty", `"features":["a","b"],"coefficients":[2,-1]`, `"features":[],"coefficients":[]`, "features: required"},
		{"features not strings", `["a","b"]`, `["a",1]`, "features: want an array of strings"},
		{"features not an array", `["a","b"]`, `"a,b"`, "features: want an array of strings"},
		{"feature null", `["a","b"]`, `["a",null]`, "features[1]: null"},
		{"feature empty", `["a","b"]`, `["a",""]`, "features[1]: empty name"},
		{"feature repeated", `["a","b"]`, `["a","a"]`, `features[1]: "a" listed more than once`},
		{"coefficients absent", `"coefficients":[2,-1],`, ``, "coefficients: required"},
		{"coefficients null", `[2,-1]`, `null`, "coefficients: required"},
		{"coefficients short", `[2,-1]`, `[2]`, "coefficients: length 1, want 2"},
		{"coefficients long", `[2,-1]`, `[2,-1,3]`, "coefficients: length 3, want 2"},
		{"coefficient null", `[2,-1]`, `[2,null]`, "coefficients[1]: null"},
		{"coefficient a string", `[2,-1]`, `[2,"-1"]`, "coefficients: want an array of numbers, got string"},
		{"coefficient overflows", `[2,-1]`, `[2,1e400]`, "got number 1e400 (out of float64 range)"},
		{"coefficient NaN", `[2,-1]`, `[2,NaN]`, "JSON has no NaN or Infinity"},
		{"intercept absent", `"intercept":0.5,`, ``, "intercept: required"},
		{"intercept null", `"intercept":0.5`, `"intercept":null`, "intercept: required"},
		{"intercept a string", `"intercept":0.5`, `"intercept":"0.5"`, "intercept: want a number"},
		{"intercept an array", `"intercept":0.5`, `"intercept":[0.5]`, "intercept: want a number"},
		{"intercept Infinity", `"intercept":0.5`, `"intercept":Infinity`, "JSON has no NaN or Infinity"},
		{"intercept -Infinity", `"intercept":0.5`, `"intercept":-Infinity`, "JSON has no NaN or Infinity"},
		{"mean without scale", `,"scale":[2,50]`, ``, "mean and scale: give both"},
		{"scale without mean", `"mean":[10,100],`, ``, "mean and scale: give both"},
		{"mean short", `[10,100]`, `[10]`, "mean: length 1, want 2"},
		{"mean null element", `[10,100]`, `[10,null]`, "mean[1]: null"},
		{"scale zero", `[2,50]`, `[2,0]`, "scale[1] (b): must not be 0"},
		{"scale negative zero", `[2,50]`, `[-0.0,50]`, "scale[0] (a): must not be 0"},
		{"scale long", `[2,50]`, `[2,50,1]`, "scale: length 3, want 2"},
		{"impute short", `[0,200]`, `[0]`, "impute: length 1, want 2"},
		{"impute a string", `[0,200]`, `"mean"`, "impute: want an array of numbers"},
		{"imputed term overflows", `"mean":[10,100],"scale":[2,50],"impute":[0,200]`,
			`"mean":[1e300,100],"scale":[1e-10,50],"impute":[-1e300,200]`, "impute[0] (a): the imputed term"},
		{"unknown link", `"logistic"}`, `"probit"}`, `link: "probit"; want "logistic" or "identity"`},
		{"empty link", `"logistic"}`, `""}`, `link: ""`},
		{"link not a string", `"logistic"}`, `1}`, "link: want a string"},
		{"model not a string", `"logistic_regression"`, `["lr"]`, "model: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.new
			if tt.old != "" {
				in = strings.Replace(valid, tt.old, tt.new, 1)
				if in == valid {
					t.Fatalf("replacement %q not found in valid", tt.old)
				}
			}
			m, err := linear.Load(strings.NewReader(in))
			if err == nil {
				t.Fatalf("Load(%s) = %v, nil; want an error mentioning %q", in, m, tt.msg)
			}
			if !errors.Is(err, linear.ErrInvalidModel) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Load(%s) = %v; want ErrInvalidModel mentioning %q", in, err, tt.msg)
			}
		})
	}
	if _, err := linear.Load(strings.NewReader(valid)); err != nil {
		t.Errorf("Load(valid) = %v; want nil", err)
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestLoadReadError(t *testing.T) {
	_, err := linear.Load(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Load(failing reader) = %v; want the read error", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(strings.Replace(std, "LINK", `,"link":"identity"`, 1)))
	f.Add([]byte(`{"features":["a"],"coefficients":[1e308],"intercept":-1e308,"mean":[0],"scale":[1e-308]}`))
	f.Add([]byte(`{"features":["a","b"],"coefficients":[1,1],"intercept":0,"mean":null,"scale":null,"link":null}`))
	f.Add([]byte(`{"features":["a",null],"coefficients":[NaN],"intercept":Infinity}`))
	f.Add([]byte(`{"features":["a"],"features":["b"]}`))
	f.Add([]byte(`[{}]`))
	f.Add([]byte(`{"features":`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := linear.Load(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, linear.ErrInvalidModel) {
				t.Fatalf("Load error %v does not wrap ErrInvalidModel", err)
			}
			return
		}
		n := len(m.Features())
		if n == 0 || m.NumOutputs() != 1 {
			t.Fatalf("Load accepted %d features, %d outputs", n, m.NumOutputs())
		}
		out := make([]float64, 2)
		rows := [][]float64{nil, make([]float64, n), make([]float64, n+2), {math.NaN()}, {math.Inf(1), math.Inf(-1)}, {1e308, -1e308}}
		for _, x := range rows {
			p := m.Predict(x)
			m.PredictRow(x, out)
			if m.Link() == linear.LinkLogistic && !(math.IsNaN(p) || 0 <= p && p <= 1) {
				t.Fatalf("logistic Predict(%v) = %v; want a probability", x, p)
			}
		}
	})
}

// benchModel is a standardised logistic model over n features.
func benchModel(b *testing.B, n int, standardise bool) *linear.RowModel {
	b.Helper()
	var sb strings.Builder
	list := func(key string, f func(j int) string) {
		fmt.Fprintf(&sb, "%q:[", key)
		for j := range n {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(f(j))
		}
		sb.WriteString("],")
	}
	sb.WriteByte('{')
	list("features", func(j int) string { return fmt.Sprintf(`"f%d"`, j) })
	list("coefficients", func(j int) string { return fmt.Sprint(0.1 * float64(j-n/2)) })
	if standardise {
		list("mean", func(j int) string { return fmt.Sprint(float64(j) * 10) })
		list("scale", func(j int) string { return fmt.Sprint(float64(j) + 1) })
	}
	sb.WriteString(`"intercept":0.25}`)
	m, err := linear.Load(strings.NewReader(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

var sink float64

func BenchmarkPredictRow(b *testing.B) {
	const n = 30
	row := make([]float64, n)
	for j := range row {
		row[j] = float64(j*7%13) * 3.5
	}
	withMissing := append([]float64(nil), row...)
	for j := 0; j < n; j += 10 {
		withMissing[j] = math.NaN()
	}
	for _, bc := range []struct {
		name        string
		standardise bool
		x           []float64
	}{
		{"features=30/standardised", true, row},
		{"features=30/standardised/10pct_missing", true, withMissing},
		{"features=30/raw", false, row},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := benchModel(b, n, bc.standardise)
			out := make([]float64, 1)
			b.ReportAllocs()
			for b.Loop() {
				m.PredictRow(bc.x, out)
			}
			sink = out[0]
		})
	}
}

func ExampleLoad() {
	m, err := linear.Load(strings.NewReader(`{
		"model": "logistic_regression",
		"features": ["user_views", "item_price"],
		"coefficients": [0.8, -0.5],
		"intercept": 0.1,
		"mean": [20, 50],
		"scale": [10, 25],
		"link": "logistic"
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// item_price is missing: it is imputed with its mean, so z = 0.
	p := m.Predict([]float64{30, math.NaN()})
	fmt.Printf("%s over %v: %.4f\n", m.Algorithm(), m.Features(), p)
	// Output: logistic_regression over [user_views item_price]: 0.7109
}
