package importer

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/recserve/recserve/dataset"
)

// movieLensFormat is one of the MovieLens rating file layouts.
type movieLensFormat int

const (
	mlNone  movieLensFormat = iota
	mlUData                 // 100K u.data: user \t item \t rating \t timestamp
	mlDat                   // 1M/10M ratings.dat: user::item::rating::timestamp
	mlCSV                   // latest ratings.csv: userId,movieId,rating,timestamp
)

// genres100K are the MovieLens 100K genre names in u.item flag order, used
// when u.genre is absent.
var genres100K = []string{
	"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
	"Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
	"Romance", "Sci-Fi", "Thriller", "War", "Western",
}

// noGenres is how the "latest" releases mark a movie without genres.
const noGenres = "(no genres listed)"

// MovieLens imports a MovieLens rating file. path is the ratings file or the
// directory holding it (u.data, ratings.dat or ratings.csv, tried in that
// order). The layout is chosen by file name, or for other names (u1.base,
// ua.test, ...) by content: "::" separators mean ratings.dat, a comma header
// ratings.csv, four white-space separated fields u.data.
//
// Every rating becomes a dataset.Rating event with Value = the rating and
// Timestamp in Unix seconds. Side files in the same directory are optional
// and add metadata: u.item (with u.genre), movies.dat or movies.csv give each
// item its title, Category = its first genre, and Description = all genres
// joined by spaces (the tokens a content model indexes); u.user or users.dat
// give users' age, gender, occupation and zip attributes. The 100K and 1M side
// files are ISO-8859-1 and are converted to UTF-8.
func MovieLens(path string, opt Options) (*dataset.Dataset, Stats, error) {
	file, format, err := findMovieLens(path)
	if err != nil {
		return nil, Stats{}, err
	}
	dir := filepath.Dir(file)
	b := newBuilder(opt)
	switch format {
	case mlUData:
		err = b.eachLine(file, true, b.uData)
		if err == nil {
			err = b.uItem(filepath.Join(dir, "u.genre"), filepath.Join(dir, "u.item"))
		}
		if err == nil {
			err = b.eachLine(filepath.Join(dir, "u.user"), false, b.uUser)
		}
	case mlDat:
		err = b.eachLine(file, true, b.ratingsDat)
		if err == nil {
			err = b.eachLine(filepath.Join(dir, "movies.dat"), false, b.moviesDat)
		}
		if err == nil {
			err = b.eachLine(filepath.Join(dir, "users.dat"), false, b.usersDat)
		}
	case mlCSV:
		err = b.ratingsCSV(file)
		if err == nil {
			err = b.moviesCSV(filepath.Join(dir, "movies.csv"))
		}
	}
	if err != nil {
		return nil, b.stats, err
	}
	d, st := b.result()
	return d, st, nil
}

// findMovieLens resolves path to a ratings file and its layout.
func findMovieLens(path string) (string, movieLensFormat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", mlNone, err
	}
	if fi.IsDir() {
		found := ""
		for _, name := range []string{"u.data", "ratings.dat", "ratings.csv"} {
			if p := filepath.Join(path, name); fileExists(p) {
				found = p
				break
			}
		}
		if found == "" {
			return "", mlNone, fmt.Errorf("movielens: no u.data, ratings.dat or ratings.csv in %s", path)
		}
		path = found
	}
	switch filepath.Base(path) {
	case "u.data":
		return path, mlUData, nil
	case "ratings.dat":
		return path, mlDat, nil
	case "ratings.csv":
		return path, mlCSV, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", mlNone, err
	}
	defer f.Close()
	l := newLines(f, path)
	if !l.next() {
		if err := l.err(); err != nil {
			return "", mlNone, err
		}
		return "", mlNone, fmt.Errorf("movielens: %s is empty", path)
	}
	switch {
	case strings.Contains(l.text, "::"):
		return path, mlDat, nil
	case strings.Contains(l.text, ","):
		return path, mlCSV, nil
	case len(strings.Fields(l.text)) == 4:
		return path, mlUData, nil
	}
	return "", mlNone, fmt.Errorf("movielens: cannot tell the format of %s (want u.data, ratings.dat or ratings.csv layout)", path)
}

// eachLine calls fn for every non-blank line of path. Malformed lines
// (ParseErrors from fn) go through b.bad. main marks the interactions file,
// whose lines are counted in Stats.Lines and which must exist; side files that
// do not exist are silently skipped.
func (b *builder) eachLine(path string, main bool, fn func(*lines) error) error {
	f, err := os.Open(path)
	if err != nil {
		if !main && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	if main {
		b.ins = slices.Grow(b.ins, dataset.EstimateLines(f))
	}
	l := newLines(f, path)
	for l.next() {
		if main {
			b.stats.Lines++
		}
		if err := fn(l); err != nil {
			if !isParseError(err) {
				return err
			}
			if err := b.bad(err); err != nil {
				return err
			}
		}
	}
	return l.err()
}

// rating builds a Rating interaction from the text fields of a ratings line.
func rating(user, item, value, ts string) (dataset.Interaction, error) {
	in := dataset.Interaction{UserID: user, ItemID: item, Event: dataset.Rating}
	if user == "" {
		return in, errors.New("empty user id")
	}
	if item == "" {
		return in, errors.New("empty item id")
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return in, fmt.Errorf("bad rating %q: want a number", value)
	}
	in.Value = v
	if in.Timestamp, err = strconv.ParseInt(ts, 10, 64); err != nil {
		return in, fmt.Errorf("bad timestamp %q: want Unix seconds", ts)
	}
	return in, nil
}

// uData parses a u.data line: user item rating timestamp, tab (or any white
// space) separated.
func (b *builder) uData(l *lines) error {
	f := strings.Fields(l.text)
	if len(f) != 4 {
		return l.errorf("got %d fields; want 4 (user item rating timestamp)", len(f))
	}
	in, err := rating(f[0], f[1], f[2], f[3])
	if err != nil {
		return l.errorf("%w", err)
	}
	b.add(in)
	return nil
}

// ratingsDat parses a ratings.dat line: UserID::MovieID::Rating::Timestamp.
func (b *builder) ratingsDat(l *lines) error {
	f := splitTrim(l.text, "::")
	if len(f) != 4 {
		return l.errorf("got %d fields; want 4 (UserID::MovieID::Rating::Timestamp)", len(f))
	}
	in, err := rating(f[0], f[1], f[2], f[3])
	if err != nil {
		return l.errorf("%w", err)
	}
	b.add(in)
	return nil
}

// ratingsCSV reads a ratings.csv with header userId,movieId,rating,timestamp.
func (b *builder) ratingsCSV(path string) error {
	var iu, ii, ir, it int
	return b.eachRecord(path, ',', true, func(t *table) (err error) {
		if iu, err = t.require("userId", "user_id"); err != nil {
			return err
		}
		if ii, err = t.require("movieId", "item_id"); err != nil {
			return err
		}
		if ir, err = t.require("rating"); err != nil {
			return err
		}
		it, err = t.require("timestamp")
		return err
	}, func(t *table) error {
		in, err := rating(t.field(iu), t.field(ii), t.field(ir), t.field(it))
		if err != nil {
			return t.errorf("%w", err)
		}
		b.add(in)
		return nil
	})
}

// setMovie fills an item's metadata from its title and genre list.
func (b *builder) setMovie(id, title string, genres []string) {
	it := b.item(id)
	it.Title = title
	it.Category, it.Description = "", ""
	if len(genres) > 0 {
		it.Category = genres[0]
		it.Description = strings.Join(genres, " ")
	}
}

// uItem reads the 100K genre list (u.genre, else genres100K) and then u.item:
// id|title|release date|video release date|IMDb URL|one 0/1 flag per genre.
func (b *builder) uItem(genrePath, itemPath string) error {
	genres := genres100K
	var read []string
	err := b.eachLine(genrePath, false, func(l *lines) error {
		name, idx, ok := strings.Cut(l.text, "|")
		i, err := strconv.Atoi(strings.TrimSpace(idx))
		if !ok || err != nil || i < 0 || i >= 100 {
			return l.errorf("want genre|index, got %q", l.text)
		}
		for len(read) <= i {
			read = append(read, "")
		}
		read[i] = decodeText(strings.TrimSpace(name))
		return nil
	})
	if err != nil {
		return err
	}
	if len(read) > 0 {
		genres = read
	}
	return b.eachLine(itemPath, false, func(l *lines) error {
		f := splitTrim(decodeText(l.text), "|")
		n, g := len(f), len(genres)
		if n < 5+g {
			return l.errorf("got %d |-separated fields; want %d (id|title|date|video date|url|%d genre flags)", n, 5+g, g)
		}
		if f[0] == "" {
			return l.errorf("empty movie id")
		}
		var set []string
		for i, flag := range f[n-g:] {
			switch flag {
			case "1":
				if genres[i] != "" {
					set = append(set, genres[i])
				}
			case "0":
			default:
				return l.errorf("bad genre flag %q for %s: want 0 or 1", flag, genres[i])
			}
		}
		b.setMovie(f[0], strings.Join(f[1:n-g-3], "|"), set)
		return nil
	})
}

// moviesDat parses a movies.dat line: MovieID::Title::Genre1|Genre2.
func (b *builder) moviesDat(l *lines) error {
	f := splitTrim(decodeText(l.text), "::")
	n := len(f)
	if n < 3 {
		return l.errorf("got %d fields; want 3 (MovieID::Title::Genres)", n)
	}
	if f[0] == "" {
		return l.errorf("empty movie id")
	}
	b.setMovie(f[0], strings.Join(f[1:n-1], "::"), splitGenres(f[n-1]))
	return nil
}

// moviesCSV reads the optional movies.csv: movieId,title,genres.
func (b *builder) moviesCSV(path string) error {
	var ii, ititle, ig int
	return b.eachRecord(path, ',', false, func(t *table) (err error) {
		if ii, err = t.require("movieId", "item_id"); err != nil {
			return err
		}
		if ititle, err = t.require("title"); err != nil {
			return err
		}
		ig = t.col("genres")
		return nil
	}, func(t *table) error {
		id := t.field(ii)
		if id == "" {
			return t.errorf("empty movie id")
		}
		b.setMovie(id, decodeText(t.field(ititle)), splitGenres(t.field(ig)))
		return nil
	})
}

// splitGenres splits a |-separated genre list, dropping empties and the
// "(no genres listed)" marker.
func splitGenres(s string) []string {
	var out []string
	for _, g := range strings.Split(s, "|") {
		if g = strings.TrimSpace(g); g != "" && g != noGenres {
			out = append(out, g)
		}
	}
	return out
}

// uUser parses a 100K u.user line: id|age|gender|occupation|zip.
func (b *builder) uUser(l *lines) error {
	f := splitTrim(decodeText(l.text), "|")
	if len(f) != 5 {
		return l.errorf("got %d fields; want 5 (id|age|gender|occupation|zip)", len(f))
	}
	return b.setUser(l, f[0], map[string]string{"age": f[1], "gender": f[2], "occupation": f[3], "zip": f[4]})
}

// usersDat parses a 1M users.dat line: UserID::Gender::Age::Occupation::Zip-code.
func (b *builder) usersDat(l *lines) error {
	f := splitTrim(decodeText(l.text), "::")
	if len(f) != 5 {
		return l.errorf("got %d fields; want 5 (UserID::Gender::Age::Occupation::Zip-code)", len(f))
	}
	return b.setUser(l, f[0], map[string]string{"gender": f[1], "age": f[2], "occupation": f[3], "zip": f[4]})
}

// setUser records a user's non-empty attributes.
func (b *builder) setUser(l *lines, id string, attrs map[string]string) error {
	if id == "" {
		return l.errorf("empty user id")
	}
	for k, v := range attrs {
		if v == "" {
			delete(attrs, k)
		}
	}
	if len(attrs) == 0 {
		attrs = nil
	}
	b.user(id).Attrs = attrs
	return nil
}

// eachRecord reads the CSV file at path: setup looks up columns once the
// header is read, then fn is called per record. Malformed records (CSV syntax
// errors, wrong field counts, ParseErrors from fn) go through b.bad. main
// marks the interactions file, counted in Stats.Lines and required to exist
// and to have a header; missing side files are skipped.
func (b *builder) eachRecord(path string, comma rune, main bool, setup, fn func(*table) error) error {
	f, err := os.Open(path)
	if err != nil {
		if !main && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	defer f.Close()
	if main {
		b.ins = slices.Grow(b.ins, dataset.EstimateLines(f))
	}
	t, err := newTable(f, path, comma)
	if err != nil {
		return err
	}
	if t.header == nil {
		if main {
			return &dataset.ParseError{File: path, Line: 1, Err: errors.New("empty file, want a header row")}
		}
		return nil
	}
	if err := setup(t); err != nil {
		return err
	}
	for {
		ok, err := t.next()
		if err == nil && !ok {
			return nil
		}
		if main {
			b.stats.Lines++
		}
		if err == nil {
			err = fn(t)
		}
		if err != nil {
			if !isParseError(err) {
				return err
			}
			if err := b.bad(err); err != nil {
				return err
			}
		}
	}
}

// fileExists reports whether path names an existing regular file.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
