// Package trainer fits recserve's Go-native models from a canonical data set
// and writes them as repository version directories (artifact + model.yaml).
// Serving code lives in the model packages; only fitting lives here, so the
// server, the evaluator and training share one implementation of each model.
package trainer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// Params are the --param k=v settings of a training run, as strings; each
// trainer parses and validates the keys it knows and rejects the others.
type Params map[string]string

// ParseParams parses "k=v" pairs.
func ParseParams(kvs []string) (Params, error) {
	p := Params{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("param %q: want key=value", kv)
		}
		p[k] = strings.TrimSpace(v)
	}
	return p, nil
}

// Job is one training run.
type Job struct {
	// Kind is the model kind to train.
	Kind string
	// DataDir is the canonical data set directory.
	DataDir string
	// Out is the version directory to create (REPO/NAME/VERSION). It must not
	// exist; it appears atomically when training succeeds.
	Out string
	// Params are kind-specific settings.
	Params Params
}

// fitFunc fits one kind: it writes its artifacts into dir and returns the spec
// (without metadata, which Run adds).
type fitFunc func(ctx context.Context, d *dataset.Dataset, p Params, dir string) (models.Spec, error)

// fitters maps each trainable kind to its fit function.
var fitters = map[string]fitFunc{
	"popularity": fitPopularity,
	"itemknn":    fitItemKNN,
	"userknn":    fitUserKNN,
	"content":    fitContent,
}

// Trainable lists the kinds Run can train, sorted.
func Trainable() []string {
	out := make([]string, 0, len(fitters))
	for k := range fitters {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Run trains j.Kind on j.DataDir and writes the version directory j.Out with
// model.yaml metadata: trained_at, dataset, dataset_sha256, training_seconds
// and the data set's size.
func Run(ctx context.Context, j Job) (models.Spec, error) {
	fit, ok := fitters[j.Kind]
	if !ok {
		return models.Spec{}, fmt.Errorf("unknown kind %q (trainable: %s)", j.Kind, strings.Join(Trainable(), ", "))
	}
	if _, err := os.Stat(j.Out); err == nil {
		return models.Spec{}, fmt.Errorf("output %s already exists", j.Out)
	}
	d, err := dataset.Read(j.DataDir)
	if err != nil {
		return models.Spec{}, err
	}
	hash, err := dataHash(j.DataDir)
	if err != nil {
		return models.Spec{}, err
	}
	parent := filepath.Dir(j.Out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return models.Spec{}, err
	}
	tmp, err := os.MkdirTemp(parent, ".train-")
	if err != nil {
		return models.Spec{}, err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	spec, err := fit(ctx, d, j.Params, tmp)
	if err != nil {
		return models.Spec{}, fmt.Errorf("train %s: %w", j.Kind, err)
	}
	spec.Kind = j.Kind
	if spec.Metadata == nil {
		spec.Metadata = map[string]any{}
	}
	spec.Metadata["trained_at"] = time.Now().UTC().Format(time.RFC3339)
	spec.Metadata["dataset"] = j.DataDir
	spec.Metadata["dataset_sha256"] = hash
	spec.Metadata["training_seconds"] = time.Since(start).Seconds()
	spec.Metadata["interactions"] = len(d.Interactions)
	spec.Metadata["items"] = len(d.Items)
	if err := models.WriteSpec(tmp, spec); err != nil {
		return models.Spec{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return models.Spec{}, err
	}
	if err := os.Rename(tmp, j.Out); err != nil {
		return models.Spec{}, err
	}
	return spec, nil
}

// dataHash is the SHA-256 over the data set's files, in name order, so a model
// records exactly which data it saw.
func dataHash(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{dataset.InteractionsFile, dataset.ItemsFile, dataset.UsersFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00", name)
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// saveArtifact writes a model's artifact to dir/name through its Save method,
// buffered; every trainer writes its main file this way.
func saveArtifact(dir, name string, m interface{ Save(io.Writer) error }) error {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := m.Save(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Close()
}

// unknownParams rejects keys a trainer does not know, so a typo is not a
// silently ignored setting.
func unknownParams(p Params, known ...string) error {
	var bad []string
	for k := range p {
		if !contains(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("unknown params %v (known: %v)", bad, known)
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
