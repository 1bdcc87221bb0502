package repository

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/recserve/recserve/dataset"
)

// PolicyFile is the file in a model's directory (<repo>/<name>/policy.yaml)
// that records which versions serve. The lifecycle RPCs write it atomically;
// it may also be written by hand. Keeping it in the repository, not in the
// process, is what lets a restart, and every replica reading a shared
// repository, serve the same versions.
const PolicyFile = "policy.yaml"

// Version policies.
const (
	// PolicyLatest serves the newest version that loads (the default).
	PolicyLatest = "latest"
	// PolicySpecific serves the version labelled stable.
	PolicySpecific = "specific"
)

// maxHistory bounds Policy.History.
const maxHistory = 20

// Policy is the content of a model's policy.yaml.
type Policy struct {
	// VersionPolicy is PolicyLatest or PolicySpecific; empty means latest.
	VersionPolicy string `yaml:"version_policy,omitempty"`
	// Stable is the version that serves under PolicySpecific.
	Stable string `yaml:"stable,omitempty"`
	// Canary, when set, takes CanaryPercent of traffic (sticky per user)
	// beside Stable. Only under PolicySpecific.
	Canary        string  `yaml:"canary,omitempty"`
	CanaryPercent float64 `yaml:"canary_percent,omitempty"`
	// History lists earlier stable versions, oldest first; Rollback returns
	// to the last one.
	History []string `yaml:"history,omitempty"`
	// Unloaded keeps the model out of service until a version is activated.
	Unloaded bool `yaml:"unloaded,omitempty"`
}

// specific reports whether p names its stable version.
func (p Policy) specific() bool { return p.VersionPolicy == PolicySpecific }

// Validate reports a policy that cannot be applied.
func (p Policy) Validate() error {
	switch p.VersionPolicy {
	case "", PolicyLatest:
		if p.Canary != "" {
			return errors.New("canary: needs version_policy specific")
		}
	case PolicySpecific:
		if p.Stable == "" && !p.Unloaded {
			return errors.New("stable: required with version_policy specific")
		}
	default:
		return fmt.Errorf("version_policy: %q is not latest or specific", p.VersionPolicy)
	}
	if p.Canary != "" && !(p.CanaryPercent > 0 && p.CanaryPercent < 100) {
		return fmt.Errorf("canary_percent: %v is not in (0, 100)", p.CanaryPercent)
	}
	if p.Canary == "" && p.CanaryPercent != 0 {
		return errors.New("canary_percent: set without a canary")
	}
	return nil
}

// pushHistory records v as the stable version being replaced.
func (p *Policy) pushHistory(v string) {
	if v == "" || len(p.History) > 0 && p.History[len(p.History)-1] == v {
		return
	}
	p.History = append(p.History, v)
	if n := len(p.History) - maxHistory; n > 0 {
		p.History = slices.Delete(p.History, 0, n)
	}
}

// readPolicy reads <modelDir>/policy.yaml strictly; a missing file is the
// default (latest) policy.
func readPolicy(modelDir string) (Policy, error) {
	path := filepath.Join(modelDir, PolicyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, err
	}
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// writePolicy replaces <modelDir>/policy.yaml atomically.
func writePolicy(modelDir string, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b, err := yaml.Marshal(p)
	if err != nil {
		return err
	}
	header := "# Written by recserve's model lifecycle RPCs; see docs/LIFECYCLE.md.\n"
	return dataset.WriteFileAtomic(filepath.Join(modelDir, PolicyFile), func(w io.Writer) error {
		if _, err := io.WriteString(w, header); err != nil {
			return err
		}
		_, err := w.Write(b)
		return err
	})
}
