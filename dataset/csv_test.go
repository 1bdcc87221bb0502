package dataset

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sameFloat treats NaN as equal to NaN, as an unknown price is NaN.
func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// diffDataset returns "" when got and want hold the same records, else a
// description of the first difference.
func diffDataset(got, want *Dataset) string {
	if len(got.Interactions) != len(want.Interactions) {
		return fmt.Sprintf("len(Interactions) = %d; want %d", len(got.Interactions), len(want.Interactions))
	}
	for i, g := range got.Interactions {
		if w := want.Interactions[i]; g != w {
			return fmt.Sprintf("Interactions[%d] = %+v; want %+v", i, g, w)
		}
	}
	if len(got.Items) != len(want.Items) {
		return fmt.Sprintf("len(Items) = %d; want %d", len(got.Items), len(want.Items))
	}
	for i, g := range got.Items {
		w := want.Items[i]
		gp, wp := g.Price, w.Price
		g.Price, w.Price = 0, 0
		if g != w || !sameFloat(gp, wp) {
			g.Price, w.Price = gp, wp
			return fmt.Sprintf("Items[%d] = %+v; want %+v", i, g, w)
		}
	}
	if len(got.Users) != len(want.Users) {
		return fmt.Sprintf("len(Users) = %d; want %d", len(got.Users), len(want.Users))
	}
	for i, g := range got.Users {
		w := want.Users[i]
		if g.ID != w.ID || len(g.Attrs) != len(w.Attrs) {
			return fmt.Sprintf("Users[%d] = %+v; want %+v", i, g, w)
		}
		for k, v := range w.Attrs {
			if gv, ok := g.Attrs[k]; !ok || gv != v {
				return fmt.Sprintf("Users[%d] = %+v; want %+v", i, g, w)
			}
		}
	}
	return ""
}

func TestReadGood(t *testing.T) {
	// testdata/good has a BOM, CRLF line ends, blank lines, padded fields and
	// header names, reordered, mixed-case and unknown columns, quoted fields, an
	// RFC3339 timestamp and a record lacking its trailing optional columns.
	got, err := Read("testdata/good")
	if err != nil {
		t.Fatalf("Read(testdata/good) = %v; want nil error", err)
	}
	nan := math.NaN()
	want := &Dataset{
		Interactions: []Interaction{
			{UserID: "u1", ItemID: "i1", Event: View, Value: 1, Timestamp: 1700000000},
			{UserID: "u1", ItemID: "i2", Event: Cart, Value: 2, Timestamp: 1700000060},
			{UserID: "u2", ItemID: "i,3", Event: Purchase, Value: 1.5, Timestamp: 1700000100},
			{UserID: "u2", ItemID: "i1", Event: Rating, Value: 4.5, Timestamp: 1700000200},
			{UserID: "u3", ItemID: "i2", Event: View, Value: 1, Timestamp: 1700000300},
		},
		Items: []Item{
			{ID: "i1", Title: "Red shoe, size 9", Category: "shoes", Price: 19.99},
			{ID: "i2", Title: `He said "hi"`, Price: nan},
			{ID: "i,3", Title: "手机", Category: "电子", Price: 1000},
		},
		Users: []User{
			{ID: "u1", Attrs: map[string]string{"age": "34", "gender": "F"}},
			{ID: "u2", Attrs: map[string]string{"gender": "M"}},
		},
	}
	if d := diffDataset(got, want); d != "" {
		t.Errorf("Read(testdata/good): %s", d)
	}
}

func TestRoundTrip(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		d    *Dataset
	}{
		{"empty", &Dataset{}},
		{"interactions only", &Dataset{Interactions: []Interaction{
			{UserID: "u", ItemID: "i", Event: View, Value: 1, Timestamp: 0},
			{UserID: "u", ItemID: "j", Event: Rating, Value: 0.1 + 0.2, Timestamp: -5, SessionID: "s1"},
			{UserID: "v", ItemID: "i", Event: Purchase, Value: 1e-300, Timestamp: math.MaxInt64},
		}}},
		{"full", &Dataset{
			Interactions: []Interaction{
				{UserID: "用户1", ItemID: "商品,1", Event: Cart, Value: 3, Timestamp: 1700000000, SessionID: "s \"quoted\""},
				{UserID: "u2", ItemID: "i2", Event: Purchase, Value: 129.5, Timestamp: 1700000001},
			},
			Items: []Item{
				{ID: "商品,1", Title: "智能手机 Pro", Category: "电子产品", Brand: "华为", Price: 3999, Description: "大屏, \"旗舰\"\n第二行"},
				{ID: "i2", Title: `Shoe "Runner", v2`, Category: "shoes", Price: nan, Description: "a,b,,c"},
				{ID: "i3", Price: 0},
			},
			Users: []User{
				{ID: "用户1", Attrs: map[string]string{"city": "北京", "age": "30"}},
				{ID: "u2", Attrs: map[string]string{"segment": "vip, gold"}},
				{ID: "u3"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "nested", "ds")
			if err := Write(dir, tt.d); err != nil {
				t.Fatalf("Write(%s) = %v; want nil", tt.name, err)
			}
			got, err := Read(dir)
			if err != nil {
				t.Fatalf("Read(Write(%s)) = %v; want nil", tt.name, err)
			}
			if d := diffDataset(got, tt.d); d != "" {
				t.Errorf("Read(Write(%s)): %s", tt.name, d)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("Write(%s) left temporary file %s", tt.name, e.Name())
				}
			}
			_, err = os.Stat(filepath.Join(dir, UsersFile))
			if exists := err == nil; exists != (len(tt.d.Users) > 0) {
				t.Errorf("Write(%s): users.csv exists = %v; want %v", tt.name, exists, len(tt.d.Users) > 0)
			}
		})
	}
}

func TestWriteRemovesStaleUsers(t *testing.T) {
	dir := t.TempDir()
	d := &Dataset{Users: []User{{ID: "u1", Attrs: map[string]string{"a": "1"}}}}
	if err := Write(dir, d); err != nil {
		t.Fatal(err)
	}
	d.Users = nil
	if err := Write(dir, d); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Users) != 0 {
		t.Errorf("Read after rewrite without users: len(Users) = %d; want 0", len(got.Users))
	}
}

func TestWriteFormat(t *testing.T) {
	dir := t.TempDir()
	d := &Dataset{
		Interactions: []Interaction{{UserID: "u", ItemID: "i", Event: Rating, Value: 0.5, Timestamp: 1700000000}},
		Items:        []Item{{ID: "i", Title: "a, b", Price: math.NaN()}},
		Users:        []User{{ID: "u", Attrs: map[string]string{"z": "1", "a": "2"}}},
	}
	if err := Write(dir, d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		InteractionsFile: "user_id,item_id,event,value,timestamp,session_id\nu,i,rating,0.5,1700000000,\n",
		ItemsFile:        "item_id,title,category,brand,price,description\ni,\"a, b\",,,,\n",
		UsersFile:        "user_id,a,z\nu,2,1\n",
	}
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != w {
			t.Errorf("Write: %s = %q; want %q", name, b, w)
		}
	}
}

func TestWriteInvalid(t *testing.T) {
	tests := []struct {
		name string
		d    *Dataset
		want string
	}{
		{"nil", nil, "nil dataset"},
		{"empty user", &Dataset{Interactions: []Interaction{{ItemID: "i", Event: View, Value: 1}}}, "interaction 0: user_id: empty id"},
		{"padded item", &Dataset{Interactions: []Interaction{{UserID: "u", ItemID: " i", Event: View, Value: 1}}}, "surrounding space"},
		{"unknown event", &Dataset{Interactions: []Interaction{{UserID: "u", ItemID: "i", Value: 1}}}, "invalid event(0)"},
		{"nan value", &Dataset{Interactions: []Interaction{{UserID: "u", ItemID: "i", Event: View, Value: math.NaN()}}}, "not finite"},
		{"dup item", &Dataset{Items: []Item{{ID: "a"}, {ID: "a"}}}, "duplicate item_id"},
		{"inf price", &Dataset{Items: []Item{{ID: "a", Price: math.Inf(1)}}}, "infinite"},
		{"dup user", &Dataset{Users: []User{{ID: "a"}, {ID: "a"}}}, "duplicate user_id"},
		{"attr user_id", &Dataset{Users: []User{{ID: "a", Attrs: map[string]string{"USER_ID": "x"}}}}, "bad attribute name"},
	}
	for _, tt := range tests {
		err := Write(t.TempDir(), tt.d)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Write(%s) = %v; want error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestReadInteractionsErrors(t *testing.T) {
	tests := []struct {
		file string
		line int
		msg  string
	}{
		{"bad_timestamp.csv", 3, `bad timestamp "yesterday"`},
		{"unknown_event.csv", 4, `unknown event "click"`},
		{"missing_field.csv", 3, "missing field"},
		{"bad_value.csv", 4, `bad value "lots"`},
		{"nan_value.csv", 2, `bad value "NaN"`},
		{"rating_no_value.csv", 2, "rating event with empty value"},
		{"missing_column.csv", 1, `missing column "timestamp"`},
		{"extra_field.csv", 2, "record has 6 fields, header has 5"},
		{"bare_quote.csv", 3, "bare \""},
		{"empty_user.csv", 2, "empty user_id"},
	}
	for _, tt := range tests {
		path := filepath.Join("testdata", "bad", tt.file)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		err = ReadInteractions(f, path, func(Interaction) error { n++; return nil })
		f.Close()
		checkParseError(t, "ReadInteractions("+tt.file+")", err, path, tt.line, tt.msg)
	}
}

func TestReadItemsUsersErrors(t *testing.T) {
	tests := []struct {
		file string
		line int
		msg  string
	}{
		{"items_bad_price.csv", 3, `bad price "cheap"`},
		{"items_dup.csv", 4, `duplicate item_id "i1" (first on line 2)`},
		{"items_missing_column.csv", 1, `missing column "item_id"`},
		{"users_dup.csv", 3, `duplicate user_id "u1"`},
	}
	for _, tt := range tests {
		path := filepath.Join("testdata", "bad", tt.file)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(tt.file, "users") {
			_, err = ReadUsers(bytes.NewReader(b), path)
		} else {
			_, err = ReadItems(bytes.NewReader(b), path)
		}
		checkParseError(t, "Read("+tt.file+")", err, path, tt.line, tt.msg)
	}
}

func TestReadNamesFailingFile(t *testing.T) {
	_, err := Read("testdata/baditems")
	checkParseError(t, "Read(testdata/baditems)", err, filepath.Join("testdata", "baditems", ItemsFile), 4, `bad price "free"`)

	if _, err := Read(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read(empty dir) = %v; want fs.ErrNotExist", err)
	}
}

func checkParseError(t *testing.T, call string, err error, file string, line int, msg string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Errorf("%s = %v; want *ParseError", call, err)
		return
	}
	if pe.File != file || pe.Line != line || !strings.Contains(pe.Err.Error(), msg) {
		t.Errorf("%s = %q; want %s:%d: ...%s...", call, err, file, line, msg)
	}
	if want := file + ":" + strconv.Itoa(line) + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("%s = %q; want prefix %q", call, err, want)
	}
}

func TestReadEmptyAndHeaderOnly(t *testing.T) {
	for _, in := range []string{"", "\uFEFF", "user_id,item_id,event,value,timestamp\r\n", "\n\n"} {
		n := 0
		err := ReadInteractions(strings.NewReader(in), "x.csv", func(Interaction) error { n++; return nil })
		if err != nil || n != 0 {
			t.Errorf("ReadInteractions(%q) = %d records, %v; want 0, nil", in, n, err)
		}
	}
}

func TestReadInteractionsCallbackError(t *testing.T) {
	stop := errors.New("stop")
	in := "user_id,item_id,event,value,timestamp\nu,i,view,1,1\nu,j,view,1,2\n"
	n := 0
	err := ReadInteractions(strings.NewReader(in), "x.csv", func(Interaction) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("ReadInteractions(callback error) = %d calls, %v; want 1, %v", n, err, stop)
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1700000000", 1700000000, true},
		{"-1", -1, true},
		{"2023-11-14T22:13:20Z", 1700000000, true},
		{"2023-11-15T06:13:20+08:00", 1700000000, true},
		{"2023-11-14T22:13:20.999Z", 1700000000, true},
		{"", 0, false},
		{"1.5", 0, false},
		{"2023-11-14", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseTimestamp(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseTimestamp(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// interactionsCSV returns n synthetic interaction lines with a header.
func interactionsCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("user_id,item_id,event,value,timestamp,session_id\n")
	events := []string{"view", "view", "view", "cart", "purchase", "rating"}
	for i := range n {
		fmt.Fprintf(&b, "user%d,item%d,%s,%d,%d,s%d\n", i%50000, (i*7)%20000, events[i%len(events)], 1+i%5, 1600000000+i, i/10)
	}
	return b.Bytes()
}

func BenchmarkReadInteractions(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		data := interactionsCSV(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var sink int
			for b.Loop() {
				err := ReadInteractions(bytes.NewReader(data), "bench.csv", func(in Interaction) error {
					sink += int(in.Event)
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			_ = sink
		})
	}
}

func BenchmarkRead(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, InteractionsFile), interactionsCSV(1_000_000), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestItemAvailability(t *testing.T) {
	in := "item_id,price,in_stock,hidden\ni1,1,true,\ni2,2,0,\ni3,3,,yes\ni4,4,5,no\n"
	items, err := ReadItems(strings.NewReader(in), "items.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ out, hidden bool }{{false, false}, {true, false}, {false, true}, {false, false}}
	for i, w := range want {
		if items[i].OutOfStock != w.out || items[i].Hidden != w.hidden {
			t.Errorf("%s: out of stock %v hidden %v; want %v %v", items[i].ID, items[i].OutOfStock, items[i].Hidden, w.out, w.hidden)
		}
	}
	_, err = ReadItems(strings.NewReader("item_id,in_stock\ni1,maybe\n"), "items.csv")
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "in_stock") {
		t.Errorf("ReadItems(bad in_stock) error = %v; want a ParseError on line 2 naming in_stock", err)
	}
	// Round trip through Write keeps the flags; plain catalogues keep six columns.
	dir := t.TempDir()
	d := &Dataset{Items: items}
	if err := Write(dir, d); err != nil {
		t.Fatal(err)
	}
	back, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if back.Items[i].OutOfStock != items[i].OutOfStock || back.Items[i].Hidden != items[i].Hidden {
			t.Errorf("round trip of %s lost its flags", items[i].ID)
		}
	}
}
