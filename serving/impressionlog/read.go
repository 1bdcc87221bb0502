package impressionlog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// backupTimeFormat is the timestamp lumberjack puts in a rotated file's
// name: FILE "impressions.jsonl" rotates into
// "impressions-2026-12-01T10-00-00.000.jsonl" (".gz" appended when
// compressed).
const backupTimeFormat = "2006-01-02T15-04-05.000"

// maxLine bounds one line read back (an answer of thousands of items with
// long ids stays far below it).
const maxLine = 64 << 20

// Log is an impression log read back into memory (Read): the impressions of
// identified users grouped by user, oldest first, with their attributed
// outcomes. It implements the experiment reports' Source, so a report built
// from the log counts what the live store's would for the same answers and
// events. A Log is immutable and safe for concurrent use.
type Log struct {
	stats Stats
	// users are the ids of the users with impressions, sorted.
	users  []string
	byUser map[string]*userLog
}

// userLog is one user's part of a Log.
type userLog struct {
	// imps are sorted by Time (ties in the order read).
	imps []store.Impression
	outs []store.Outcome
}

// Stats describe what Read read (its JSON is part of `recctl eval
// --impressions --json`).
type Stats struct {
	// Files are the files read, in the order read: each log's rotated
	// backups, oldest first, then the log.
	Files []string `json:"files"`
	// Impressions and Outcomes count the lines of each kind.
	Impressions int `json:"impressions"`
	Outcomes    int `json:"outcomes"`
	// Anonymous counts impressions without a user id: experiment reports
	// count users, so these are not scanned (the live store does not keep
	// them either).
	Anonymous int `json:"anonymous"`
	// Orphans counts outcomes whose impression is not among the lines read
	// (answered by a replica whose log was not read, or rotated away); no
	// report counts them.
	Orphans int `json:"orphans"`
	// First and Last are the times of the earliest and latest impression
	// (zero when there is none).
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// Stats returns what the log holds.
func (l *Log) Stats() Stats { return l.stats }

// Read reads impression logs (File's output) into a Log. Each argument is a
// file path or a filepath.Glob pattern ("var/impressions/*.jsonl",
// "replica-*/impressions.jsonl"); each file is read together with its
// rotated backups in the same directory (lumberjack's
// NAME-<2006-01-02T15-04-05.000>.EXT, gzip-compressed ones as well), so
// naming the live log reads all of it, and a log whose current file is gone
// is still read from its backups. A file named twice is read once. An
// argument matching no file, an unreadable file, or a line that is not a
// well-formed impression or outcome (see the package doc) is an error
// naming the file and line. Several replicas' logs are read together to
// join each outcome to its impression wherever it was answered.
func Read(paths ...string) (*Log, error) {
	if len(paths) == 0 {
		return nil, errors.New("impressionlog: no log to read")
	}
	var files []string
	seen := map[string]bool{}
	add := func(p string) {
		if key := absOrClean(p); !seen[key] {
			seen[key] = true
			files = append(files, p)
		}
	}
	for _, arg := range paths {
		matches, err := filepath.Glob(arg)
		if err != nil {
			return nil, fmt.Errorf("impressionlog: %q: %w", arg, err)
		}
		if !hasMeta(arg) {
			matches = []string{arg} // a missing file may still have backups
		}
		found := false
		for _, m := range matches {
			backups, err := backupsOf(m)
			if err != nil {
				return nil, err
			}
			for _, b := range backups {
				add(b)
				found = true
			}
			info, err := os.Stat(m)
			switch {
			case err == nil && !info.IsDir():
				add(m)
				found = true
			case err != nil && !errors.Is(err, os.ErrNotExist):
				return nil, fmt.Errorf("impressionlog: %w", err)
			}
		}
		if !found {
			return nil, fmt.Errorf("impressionlog: no log file matches %q: %w", arg, os.ErrNotExist)
		}
	}
	l := &Log{stats: Stats{Files: files}, byUser: map[string]*userLog{}}
	userOf := map[string]string{} // impression id → user id
	var outs []store.Outcome
	for _, f := range files {
		if err := l.readFile(f, userOf, &outs); err != nil {
			return nil, err
		}
	}
	for _, o := range outs {
		user, ok := userOf[o.ImpressionID]
		if !ok {
			l.stats.Orphans++
			continue
		}
		u := l.byUser[user]
		u.outs = append(u.outs, o)
	}
	for id, u := range l.byUser {
		l.users = append(l.users, id)
		slices.SortStableFunc(u.imps, func(a, b store.Impression) int { return a.Time.Compare(b.Time) })
	}
	slices.Sort(l.users)
	return l, nil
}

// absOrClean is the key under which Read remembers a file.
func absOrClean(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// hasMeta reports whether p is a glob pattern rather than a plain path.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// backupsOf returns the rotated backups of the log file p, oldest first.
func backupsOf(p string) ([]string, error) {
	dir, name := filepath.Split(p)
	ext := filepath.Ext(name)
	prefix := strings.TrimSuffix(name, ext) + "-"
	entries, err := os.ReadDir(filepath.Clean(dir + "."))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("impressionlog: backups of %s: %w", p, err)
	}
	type backup struct{ stamp, path string }
	var out []backup
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasPrefix(n, prefix) {
			continue
		}
		stamp := strings.TrimSuffix(strings.TrimSuffix(n[len(prefix):], ".gz"), ext)
		if _, err := time.Parse(backupTimeFormat, stamp); err != nil || prefix+stamp+ext != strings.TrimSuffix(n, ".gz") {
			continue
		}
		out = append(out, backup{stamp, filepath.Join(dir, n)})
	}
	slices.SortFunc(out, func(a, b backup) int { return strings.Compare(a.stamp, b.stamp) })
	paths := make([]string, len(out))
	for i, b := range out {
		paths[i] = b.path
	}
	return paths, nil
}

// readFile adds the lines of the file at path to l: impressions to their
// users (and their ids to userOf), outcomes to outs.
func (l *Log) readFile(path string, userOf map[string]string, outs *[]store.Outcome) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("impressionlog: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("impressionlog: %s: %w", path, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := l.addLine(line, userOf, outs); err != nil {
			return fmt.Errorf("impressionlog: %s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("impressionlog: %s:%d: %w", path, n+1, err)
	}
	return nil
}

// addLine parses one line.
func (l *Log) addLine(line []byte, userOf map[string]string, outs *[]store.Outcome) error {
	var probe struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	switch probe.Kind {
	case "recommend", "similar":
		var imp router.Impression
		if err := json.Unmarshal(line, &imp); err != nil {
			return fmt.Errorf("impression: %w", err)
		}
		if imp.ID == "" || imp.Time.IsZero() {
			return errors.New("impression without recommendation_id or time")
		}
		l.stats.Impressions++
		if l.stats.First.IsZero() || imp.Time.Before(l.stats.First) {
			l.stats.First = imp.Time
		}
		if imp.Time.After(l.stats.Last) {
			l.stats.Last = imp.Time
		}
		if imp.UserID == "" {
			l.stats.Anonymous++
			return nil
		}
		userOf[imp.ID] = imp.UserID
		u := l.byUser[imp.UserID]
		if u == nil {
			u = &userLog{}
			l.byUser[imp.UserID] = u
		}
		u.imps = append(u.imps, imp.Stored())
	case kindOutcome:
		var ol outcomeLine
		if err := json.Unmarshal(line, &ol); err != nil {
			return fmt.Errorf("outcome: %w", err)
		}
		if ol.ImpressionID == "" || ol.UserID == "" || ol.Time.IsZero() {
			return errors.New("outcome without recommendation_id, user_id or time")
		}
		l.stats.Outcomes++
		*outs = append(*outs, ol.outcome())
	default:
		return fmt.Errorf("kind %q is not recommend, similar or outcome", probe.Kind)
	}
	return nil
}

// ScanImpressions calls fn once per user, in user id order, who has
// impressions with Time in [since, until) (a zero since or until leaves
// that end open), with those impressions oldest first and the outcomes
// attributed to them. It implements experiment.Source. The slices are the
// log's own: fn must not modify them.
func (l *Log) ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []store.Impression, outs []store.Outcome) error) error {
	for _, id := range l.users {
		if err := ctx.Err(); err != nil {
			return err
		}
		u := l.byUser[id]
		lo := 0
		if !since.IsZero() {
			lo, _ = slices.BinarySearchFunc(u.imps, since, func(imp store.Impression, t time.Time) int { return imp.Time.Compare(t) })
		}
		hi := len(u.imps)
		if !until.IsZero() {
			hi, _ = slices.BinarySearchFunc(u.imps, until, func(imp store.Impression, t time.Time) int { return imp.Time.Compare(t) })
		}
		if lo >= hi {
			continue
		}
		imps := u.imps[lo:hi:hi]
		outs := u.outs
		if lo > 0 || hi < len(u.imps) {
			in := make(map[string]bool, len(imps))
			for i := range imps {
				in[imps[i].ID] = true
			}
			outs = nil
			for _, o := range u.outs {
				if in[o.ImpressionID] {
					outs = append(outs, o)
				}
			}
		}
		if err := fn(id, imps, outs[:len(outs):len(outs)]); err != nil {
			return err
		}
	}
	return nil
}
