// Package vocab reads and writes item vocabularies: the text file a model
// version names under model.yaml "items", one item id per line, line i (from
// 0) being the item with index i. Models index items densely through it, so
// their artifacts hold int32 indices rather than strings.
package vocab

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// DefaultFile is the vocabulary name our trainers write.
const DefaultFile = "items.txt"

// Vocab maps item ids to dense indices and back. It is immutable and safe for
// concurrent use.
type Vocab struct {
	ids   []string
	index map[string]int32
}

// New builds a vocabulary; ids must be unique and non-empty.
func New(ids []string) (*Vocab, error) {
	v := &Vocab{ids: ids, index: make(map[string]int32, len(ids))}
	for i, id := range ids {
		if id == "" || strings.ContainsAny(id, "\r\n") {
			return nil, fmt.Errorf("item %d: invalid id %q", i, id)
		}
		if _, dup := v.index[id]; dup {
			return nil, fmt.Errorf("item %d: duplicate id %q", i, id)
		}
		v.index[id] = int32(i)
	}
	return v, nil
}

// Len is the number of items.
func (v *Vocab) Len() int { return len(v.ids) }

// ID returns the id of index i.
func (v *Vocab) ID(i int32) string { return v.ids[i] }

// IDs returns every id in index order. The slice must not be modified.
func (v *Vocab) IDs() []string { return v.ids }

// Index returns the index of id.
func (v *Vocab) Index(id string) (int32, bool) {
	i, ok := v.index[id]
	return i, ok
}

// Read parses a vocabulary; name is used in errors ("name:line: ...").
// Trailing carriage returns and surrounding spaces are ignored; blank lines
// are errors because they would shift every later index.
func Read(r io.Reader, name string) (*Vocab, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		id := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if id == "" {
			return nil, fmt.Errorf("%s:%d: empty item id", name, line)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	v, err := New(ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// ReadFile reads the vocabulary at path.
func ReadFile(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(bufio.NewReader(f), path)
}

// WriteFile writes the vocabulary to path, one id per line.
func (v *Vocab) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, id := range v.ids {
		w.WriteString(id)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
