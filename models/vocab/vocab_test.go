package vocab

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	v, err := New([]string{"i1", "商品2", "i3"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), DefaultFile)
	if err := v.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs(), v.IDs()) {
		t.Errorf("ReadFile = %v; want %v", got.IDs(), v.IDs())
	}
	if i, ok := got.Index("商品2"); !ok || i != 1 || got.ID(1) != "商品2" {
		t.Errorf("Index(商品2) = %d, %v; want 1, true", i, ok)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\n\nb\n", "v.txt:2: empty item id"},
		{"a\nb\na\n", "duplicate id \"a\""},
	}
	for _, tt := range tests {
		_, err := Read(strings.NewReader(tt.in), "v.txt")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Read(%q) = %v; want an error containing %q", tt.in, err, tt.want)
		}
	}
	v, err := Read(strings.NewReader("\ufeffa\r\nb\r\n"), "v.txt")
	if err != nil || !slices.Equal(v.IDs(), []string{"a", "b"}) {
		t.Errorf("Read(BOM, CRLF) = %v, %v; want [a b]", v, err)
	}
}
