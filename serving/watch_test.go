package serving

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/recserve/recserve/serving/router"
)

func TestWarnUnknownModels(t *testing.T) {
	cfg := router.Config{
		DefaultScorer: "propensity", DefaultSimilar: "itemknn", Fallback: "popularity",
		Routes: []router.Route{
			{Name: "main", Sources: []router.Source{{Model: "itemknn"}, {Model: "rnn"}}, Fallback: router.Chain{"trending"}},
			{Name: "typo", Sources: []router.Source{{Model: "itmeknn"}}},
		},
	}
	if got, want := strings.Join(cfg.Models(), " "), "itemknn itmeknn popularity propensity rnn trending"; got != want {
		t.Errorf("Models() = %q; want %q", got, want)
	}
	tests := []struct {
		name  string
		known []string
		want  []string // models warned about
	}{
		{"all deployed", []string{"itemknn", "itmeknn", "popularity", "propensity", "rnn", "trending"}, nil},
		{"a typo and an undeployed model", []string{"itemknn", "popularity", "propensity", "trending"}, []string{"itmeknn", "rnn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			warnUnknownModels(&cfg, tt.known, slog.New(slog.NewTextHandler(&buf, nil)))
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if buf.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.want) {
				t.Fatalf("logged %q; want a warning for each of %v", buf.String(), tt.want)
			}
			for i, m := range tt.want {
				if !strings.Contains(lines[i], "model="+m) || !strings.Contains(lines[i], "level=WARN") {
					t.Errorf("line %d = %q; want a warning naming %s", i, lines[i], m)
				}
			}
		})
	}
}
