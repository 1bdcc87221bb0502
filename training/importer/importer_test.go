package importer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/recserve/recserve/dataset"
)

// fmtInteractions renders interactions compactly as
// "user item event value timestamp [session]" for readable comparisons.
func fmtInteractions(ins []dataset.Interaction) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		s := fmt.Sprintf("%s %s %v %g %d", in.UserID, in.ItemID, in.Event, in.Value, in.Timestamp)
		if in.SessionID != "" {
			s += " " + in.SessionID
		}
		out[i] = s
	}
	return out
}

// fmtItems renders items as "id|title|category|description" (price must be NaN).
func fmtItems(t *testing.T, items []dataset.Item) []string {
	t.Helper()
	out := make([]string, len(items))
	for i, it := range items {
		if !math.IsNaN(it.Price) || it.Brand != "" {
			t.Errorf("item %s: Price, Brand = %v, %q; want NaN, empty", it.ID, it.Price, it.Brand)
		}
		out[i] = it.ID + "|" + it.Title + "|" + it.Category + "|" + it.Description
	}
	return out
}

// fmtUsers renders users as "id k=v k=v" with sorted keys.
func fmtUsers(users []dataset.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		keys := make([]string, 0, len(u.Attrs))
		for k := range u.Attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s := u.ID
		for _, k := range keys {
			s += " " + k + "=" + u.Attrs[k]
		}
		out[i] = s
	}
	return out
}

type importFunc func(path string, opt Options) (*dataset.Dataset, Stats, error)

func csvWith(m string) importFunc {
	return func(path string, opt Options) (*dataset.Dataset, Stats, error) {
		mp, err := ParseMapping(m)
		if err != nil {
			return nil, Stats{}, err
		}
		return CSV(path, mp, opt)
	}
}

func TestImportGood(t *testing.T) {
	tests := []struct {
		name         string
		fn           importFunc
		path         string
		interactions []string
		items        []string
		users        []string
		lines        int
	}{
		{
			name: "100K u.data",
			fn:   MovieLens, path: "testdata/ml100k/u.data",
			interactions: []string{
				"22 377 rating 1 878887116",
				"244 51 rating 2 880606923",
				"196 242 rating 3 881250949",
				"196 302 rating 5 881250949",
				"186 302 rating 3 891717742",
			},
			items: []string{
				"51|Misérables, Les (1995)|Drama|Drama War",
				"242|Kolya (1996)|Comedy|Comedy",
				"267|unknown|unknown|unknown",
				"302|L.A. Confidential (1997)|Crime|Crime Film-Noir Mystery Thriller",
				"377|||",
			},
			users: []string{
				"186 age=39 gender=F occupation=executive zip=00000",
				"196 age=49 gender=M occupation=writer zip=55105",
			},
			lines: 5,
		},
		{
			name: "100K directory",
			fn:   MovieLens, path: "testdata/ml100k",
			interactions: []string{
				"22 377 rating 1 878887116",
				"244 51 rating 2 880606923",
				"196 242 rating 3 881250949",
				"196 302 rating 5 881250949",
				"186 302 rating 3 891717742",
			},
			items: []string{
				"51|Misérables, Les (1995)|Drama|Drama War",
				"242|Kolya (1996)|Comedy|Comedy",
				"267|unknown|unknown|unknown",
				"302|L.A. Confidential (1997)|Crime|Crime Film-Noir Mystery Thriller",
				"377|||",
			},
			users: []string{
				"186 age=39 gender=F occupation=executive zip=00000",
				"196 age=49 gender=M occupation=writer zip=55105",
			},
			lines: 5,
		},
		{
			name: "100K u1.base sniffed by content",
			fn:   MovieLens, path: "testdata/ml100k/u1.base",
			interactions: []string{"1 1 rating 5 874965758", "1 2 rating 3 876893171"},
			items: []string{
				"1|||", "2|||",
				"51|Misérables, Les (1995)|Drama|Drama War",
				"242|Kolya (1996)|Comedy|Comedy",
				"267|unknown|unknown|unknown",
				"302|L.A. Confidential (1997)|Crime|Crime Film-Noir Mystery Thriller",
			},
			users: []string{
				"186 age=39 gender=F occupation=executive zip=00000",
				"196 age=49 gender=M occupation=writer zip=55105",
			},
			lines: 2,
		},
		{
			name: "1M ratings.dat with BOM and CRLF",
			fn:   MovieLens, path: "testdata/ml1m",
			interactions: []string{
				"10 3408 rating 4 978300000",
				"1 1193 rating 5 978300760",
				"2 1193 rating 4 978300760",
				"1 661 rating 3 978302109",
			},
			items: []string{
				"2|Jumanji (1995)|Adventure|Adventure Children's Fantasy",
				"3|Les Misérables: Extra (1995)|Drama|Drama",
				"661|James and the Giant Peach (1996)|Animation|Animation Children's Musical",
				"1193|One Flew Over the Cuckoo's Nest (1975)|Drama|Drama",
				"3408|Erin Brockovich (2000)|Drama|Drama",
			},
			users: []string{
				"1 age=1 gender=F occupation=10 zip=48067",
				"2 age=56 gender=M occupation=16 zip=70072",
			},
			lines: 4,
		},
		{
			name: "latest ratings.csv",
			fn:   MovieLens, path: "testdata/mllatest/ratings.csv",
			interactions: []string{
				"1 3 rating 4 964981247",
				"2 11 rating 0.5 964982224",
				"1 1 rating 4 964982703",
			},
			items: []string{
				"1|Toy Story (1995)|Adventure|Adventure Animation Children Comedy Fantasy",
				`3|Title with "quotes" (2000)||`,
				"11|American President, The (1995)|Comedy|Comedy Drama Romance",
			},
			lines: 3,
		},
		{
			name: "retailrocket with BOM, CRLF, spaces, properties",
			fn:   RetailRocket, path: "testdata/retailrocket",
			interactions: []string{
				"257597 355908 view 1 1433221332 257597-1",
				"257597 355908 cart 1 1433221999 257597-1",
				"257597 355908 purchase 1 1433223236 257597-1",
				"111 248676 view 1 1433224214 111-1",
				"992329 248676 view 1 1433224214 992329-1",
				"257597 248676 view 1 1433230000 257597-2",
			},
			items: []string{"248676||491|", "355908||1174|", "460429||1338|"},
			lines: 6,
		},
		{
			name: "generic with semicolons, synonyms, layout",
			fn: csvWith("user=UID,item=sku,event=type,value=qty,timestamp=when,session=sid," +
				"delimiter=semicolon,time-layout=2006-01-02 15:04:05"),
			path: "testdata/generic/clicks.csv",
			interactions: []string{
				"u3 A-1 view 3 1704067200",
				"u2 B-2 cart 2 1704186000 s2",
				"u1 A-1 view 1 1704189600 s1",
				"u1 B-2 purchase 1 1704189900 s1",
			},
			items: []string{"A-1|||", "B-2|||"},
			lines: 4,
		},
		{
			name: "generic with mixed timestamp units",
			fn:   csvWith("user=user,item=item,ts=ts"),
			path: "testdata/generic/ms.csv",
			interactions: []string{
				"x 1 view 1 1700000000",
				"z 3 view 1 1700000000",
				"x 2 view 1 1700000001",
				"y 1 view 1 1700000001",
			},
			items: []string{"1|||", "2|||", "3|||"},
			lines: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, skip := range []bool{false, true} {
				d, st, err := tt.fn(tt.path, Options{SkipBad: skip})
				if err != nil {
					t.Fatalf("import(%s, SkipBad=%v) = %v; want nil error", tt.path, skip, err)
				}
				if got := fmtInteractions(d.Interactions); !slices.Equal(got, tt.interactions) {
					t.Errorf("import(%s).Interactions =\n%s\nwant\n%s", tt.path, strings.Join(got, "\n"), strings.Join(tt.interactions, "\n"))
				}
				if got := fmtItems(t, d.Items); !slices.Equal(got, tt.items) {
					t.Errorf("import(%s).Items =\n%s\nwant\n%s", tt.path, strings.Join(got, "\n"), strings.Join(tt.items, "\n"))
				}
				if got := fmtUsers(d.Users); !slices.Equal(got, tt.users) {
					t.Errorf("import(%s).Users = %q; want %q", tt.path, got, tt.users)
				}
				want := Stats{Lines: tt.lines, Imported: len(tt.interactions), Items: len(tt.items), Users: len(tt.users)}
				if st.Lines != want.Lines || st.Imported != want.Imported || st.Skipped != 0 ||
					st.Items != want.Items || st.Users != want.Users || len(st.Errors) != 0 {
					t.Errorf("import(%s) stats = %+v; want %+v", tt.path, st, want)
				}
				if err := d.Validate(); err != nil {
					t.Errorf("import(%s).Validate() = %v; want nil", tt.path, err)
				}
			}
		})
	}
}

// TestImportRoundTrip checks that imported data sets survive the canonical
// format unchanged.
func TestImportRoundTrip(t *testing.T) {
	d, _, err := MovieLens("testdata/ml100k", Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := dataset.Write(dir, d); err != nil {
		t.Fatalf("dataset.Write(imported) = %v; want nil", err)
	}
	got, err := dataset.Read(dir)
	if err != nil {
		t.Fatalf("dataset.Read(written) = %v; want nil", err)
	}
	if g, w := fmtInteractions(got.Interactions), fmtInteractions(d.Interactions); !slices.Equal(g, w) {
		t.Errorf("Read(Write(ml100k)).Interactions = %q; want %q", g, w)
	}
	if g, w := fmtItems(t, got.Items), fmtItems(t, d.Items); !slices.Equal(g, w) {
		t.Errorf("Read(Write(ml100k)).Items = %q; want %q", g, w)
	}
	if g, w := fmtUsers(got.Users), fmtUsers(d.Users); !slices.Equal(g, w) {
		t.Errorf("Read(Write(ml100k)).Users = %q; want %q", g, w)
	}
}

func TestImportBad(t *testing.T) {
	type loc struct {
		file string
		line int
		msg  string
	}
	tests := []struct {
		name     string
		fn       importFunc
		path     string
		errs     []loc // every bad record, in order; the first is the strict-mode error
		imported []string
		lines    int
	}{
		{
			name: "100K u.data", fn: MovieLens, path: "testdata/ml100k_bad/u.data",
			errs: []loc{
				{"ml100k_bad/u.data", 2, `bad rating "three"`},
				{"ml100k_bad/u.data", 3, "got 3 fields; want 4"},
			},
			imported: []string{
				"244 51 rating 2 880606923",
				"7 8 rating 4 880606924",
				"196 242 rating 3 881250949",
			},
			lines: 5,
		},
		{
			name: "1M ratings.dat and movies.dat", fn: MovieLens, path: "testdata/ml1m_bad",
			errs: []loc{
				{"ml1m_bad/ratings.dat", 2, "got 3 fields; want 4"},
				{"ml1m_bad/ratings.dat", 3, `bad timestamp "yesterday"`},
				{"ml1m_bad/ratings.dat", 4, "got 5 fields; want 4"},
				{"ml1m_bad/movies.dat", 2, "got 1 fields; want 3"},
			},
			imported: []string{"1 1193 rating 5 978300760"},
			lines:    4,
		},
		{
			name: "latest ratings.csv", fn: MovieLens, path: "testdata/mllatest_bad",
			errs: []loc{
				{"mllatest_bad/ratings.csv", 3, `bad rating ""`},
				{"mllatest_bad/ratings.csv", 4, `extraneous or missing " in quoted-field`},
			},
			imported: []string{"1 1 rating 4 964982703"},
			lines:    3,
		},
		{
			name: "retailrocket", fn: RetailRocket, path: "testdata/retailrocket_bad/events.csv",
			errs: []loc{
				{"retailrocket_bad/events.csv", 3, `bad timestamp "1433221332xyz"`},
				{"retailrocket_bad/events.csv", 4, `unknown event "wishlist"`},
				{"retailrocket_bad/events.csv", 5, "empty visitorid"},
			},
			imported: []string{"257597 355908 view 1 1433221332 257597-1"},
			lines:    4,
		},
		{
			name: "generic", fn: csvWith("user=user,item=item,timestamp=ts,event=event"), path: "testdata/generic/bad.csv",
			errs: []loc{
				{"generic/bad.csv", 3, `bad timestamp "notatime"`},
				{"generic/bad.csv", 4, `empty item id (column "item")`},
				{"generic/bad.csv", 5, `unknown event "teleport"`},
				{"generic/bad.csv", 6, "record has 5 fields, header has 4"},
			},
			imported: []string{"x 1 view 1 1700000000"},
			lines:    5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.fn(tt.path, Options{})
			checkParseError(t, tt.path, err, tt.errs[0].file, tt.errs[0].line, tt.errs[0].msg)

			d, st, err := tt.fn(tt.path, Options{SkipBad: true})
			if err != nil {
				t.Fatalf("import(%s, SkipBad) = %v; want nil error", tt.path, err)
			}
			if st.Skipped != len(tt.errs) || st.Lines != tt.lines || st.Imported != len(tt.imported) {
				t.Errorf("import(%s, SkipBad) stats = %+v; want Skipped %d, Lines %d, Imported %d",
					tt.path, st, len(tt.errs), tt.lines, len(tt.imported))
			}
			if got := fmtInteractions(d.Interactions); !slices.Equal(got, tt.imported) {
				t.Errorf("import(%s, SkipBad).Interactions = %q; want %q", tt.path, got, tt.imported)
			}
			if len(st.Errors) != len(tt.errs) {
				t.Fatalf("import(%s, SkipBad) len(Errors) = %d; want %d (%v)", tt.path, len(st.Errors), len(tt.errs), st.Errors)
			}
			for i, e := range tt.errs {
				checkParseError(t, tt.path, st.Errors[i], e.file, e.line, e.msg)
			}
		})
	}
}

func checkParseError(t *testing.T, path string, err error, file string, line int, msg string) {
	t.Helper()
	file = filepath.Join("testdata", file)
	var pe *dataset.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("import(%s) error = %v; want *dataset.ParseError", path, err)
		return
	}
	if pe.File != file || pe.Line != line || !strings.Contains(pe.Err.Error(), msg) {
		t.Errorf("import(%s) error = %q; want %s:%d: ...%s...", path, err, file, line, msg)
	}
	if !strings.HasPrefix(err.Error(), file+":"+strconv.Itoa(line)+": ") {
		t.Errorf("import(%s) error = %q; want prefix %s:%d: ", path, err, file, line)
	}
}

func TestImportSetupErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   importFunc
		path string
		want string
	}{
		{"movielens no ratings", MovieLens, "testdata/retailrocket", "no u.data, ratings.dat or ratings.csv"},
		{"movielens missing", MovieLens, "testdata/nope", "no such file"},
		{"retailrocket missing", RetailRocket, "testdata/ml100k", "events.csv"},
		{"retailrocket wrong header", RetailRocket, "testdata/generic/ms.csv", `generic/ms.csv:1: missing column "timestamp"`},
		{"generic missing column", csvWith("user=uid,item=item"), "testdata/generic/ms.csv", `ms.csv:1: missing column "uid"`},
		{"generic rating without value", csvWith("user=user,item=item,default-event=rating"), "testdata/generic/ms.csv", "needs a value column"},
	}
	for _, tt := range tests {
		_, _, err := tt.fn(tt.path, Options{SkipBad: true})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: import(%s) = %v; want error containing %q", tt.name, tt.path, err, tt.want)
		}
	}
}

func TestParseMapping(t *testing.T) {
	tests := []struct {
		in   string
		want Mapping
		err  string
	}{
		{in: "user=uid,item=sku,event=type,timestamp=ts", want: Mapping{User: "uid", Item: "sku", Event: "type", Timestamp: "ts"}},
		{in: " user = a , item = b , ts = t , value=v, session=s, default_event=Purchase, delimiter=tab ",
			want: Mapping{User: "a", Item: "b", Timestamp: "t", Value: "v", Session: "s", DefaultEvent: dataset.Purchase, Delimiter: '\t'}},
		{in: "user=a,item=b,delimiter=;,time-layout=2006-01-02 15:04", want: Mapping{User: "a", Item: "b", Delimiter: ';', TimeLayout: "2006-01-02 15:04"}},
		{in: "user=a,item=b,delimiter=|", want: Mapping{User: "a", Item: "b", Delimiter: '|'}},
		{in: "user=a", err: "needs an item column"},
		{in: "item=a", err: "needs a user column"},
		{in: "user=a,item=b,colour=red", err: `key "colour" unknown`},
		{in: "user=a,item=b,user=c", err: `key "user" repeated`},
		{in: "user=a,item", err: "want key=value"},
		{in: "user=a,item=b,default-event=click", err: "unknown event"},
		{in: "user=a,item=b,delimiter=ab", err: "want one character"},
		{in: `user=a,item=b,delimiter="`, err: "invalid"},
		{in: "user=a,item=b,default-event=rating", err: "needs a value column"},
	}
	for _, tt := range tests {
		got, err := ParseMapping(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseMapping(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMapping(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in, layout string
		want       int64
		ok         bool
	}{
		{"1700000000", "", 1700000000, true},
		{"1700000000123", "", 1700000000, true},
		{"-1500", "", -1500, true},
		{"-100000000001", "", -100000001, true},
		{"1700000000.9", "", 1700000000, true},
		{"2023-11-14T22:13:20Z", "", 1700000000, true},
		{"2023-11-14 22:13:20", "", 1700000000, true},
		{"2023-11-14", "", 1699920000, true},
		{"14/11/2023 22:13", "02/01/2006 15:04", 1699999980, true},
		{"1700000000", "02/01/2006", 1700000000, true},
		{"", "", 0, false},
		{"soon", "", 0, false},
		{"NaN", "", 0, false},
		{"1e30", "", 0, false},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, tt.layout)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseTime(%q, %q) = %d, %v; want %d, ok=%v", tt.in, tt.layout, got, err, tt.want, tt.ok)
		}
	}
}

func TestCompareIDs(t *testing.T) {
	in := []string{"b", "10", "a", "2", "007", "1", "7", "", "a1"}
	want := []string{"1", "2", "007", "7", "10", "", "a", "a1", "b"}
	got := slices.Clone(in)
	slices.SortFunc(got, compareIDs)
	if !slices.Equal(got, want) {
		t.Errorf("sort(%q, compareIDs) = %q; want %q", in, got, want)
	}
}

func TestDecodeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"Mis\xe9rables", "Misérables"},
		{"Misérables", "Misérables"},
		{"\xff\xfe", "ÿþ"},
	}
	for _, tt := range tests {
		if got := decodeText(tt.in); got != tt.want {
			t.Errorf("decodeText(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func BenchmarkImport(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		dir := b.TempDir()
		var sb strings.Builder
		sb.WriteString("timestamp,visitorid,event,itemid,transactionid\n")
		events := []string{"view", "view", "view", "addtocart", "transaction"}
		for i := range n {
			fmt.Fprintf(&sb, "%d,%d,%s,%d,\n", 1433221332117+int64(i)*997, i%70000, events[i%len(events)], (i*7919)%40000)
		}
		path := filepath.Join(dir, "events.csv")
		if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("retailrocket/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := RetailRocket(path, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("csv/%d", n), func(b *testing.B) {
			m := Mapping{User: "visitorid", Item: "itemid", Event: "event", Timestamp: "timestamp"}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := CSV(path, m, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
