package models

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// SpecFile is the name of the file describing a model version.
const SpecFile = "model.yaml"

// Spec is the content of a version's model.yaml. Only Kind is required; which
// other keys a kind needs is checked by that kind's builder. A model trained
// outside recserve deploys with a hand-written model.yaml, so nothing here may
// depend on files only our own trainers write.
type Spec struct {
	// Kind names the model family: popularity, itemknn, userknn, content, gbm,
	// linear or onnx.
	Kind string `yaml:"kind"`
	// File is the main artifact, relative to the version directory.
	File string `yaml:"file,omitempty"`
	// Items is the item vocabulary file (one item id per line, line i is index
	// i) for models that index items.
	Items string `yaml:"items,omitempty"`
	// Features are the ordered feature names a scorer consumes.
	Features []string `yaml:"features,omitempty"`
	// Signature is the ONNX signature: user_vector, sequence or features.
	Signature string `yaml:"signature,omitempty"`
	// Inputs and Outputs are ONNX tensor names.
	Inputs  []string `yaml:"inputs,omitempty"`
	Outputs []string `yaml:"outputs,omitempty"`
	// Params are kind-specific settings.
	Params map[string]any `yaml:"params,omitempty"`
	// Metadata is free information (trained_at, dataset, metrics, ...).
	Metadata map[string]any `yaml:"metadata,omitempty"`
}

// ReadSpec reads and strictly decodes dir/model.yaml: unknown keys are errors,
// so a typo does not silently fall back to a default.
func ReadSpec(dir string) (Spec, error) {
	path := filepath.Join(dir, SpecFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Spec{}, err
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Spec{}, fmt.Errorf("%s: empty file", path)
		}
		return Spec{}, fmt.Errorf("%s: %w", path, err)
	}
	if s.Kind == "" {
		return Spec{}, fmt.Errorf("%s: kind is required", path)
	}
	return s, nil
}

// WriteSpec writes s to dir/model.yaml.
func WriteSpec(dir string, s Spec) error {
	b, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, SpecFile), b, 0o644)
}

// Path resolves a file named by the spec against the version directory and
// rejects names that escape it.
func Path(dir, name string) (string, error) {
	if name == "" {
		return "", errors.New("empty file name")
	}
	if filepath.IsAbs(name) || !filepath.IsLocal(name) {
		return "", fmt.Errorf("file %q escapes the version directory", name)
	}
	return filepath.Join(dir, name), nil
}

// ParamFloat returns the float parameter key, or def when absent. A present
// value of the wrong type is an error.
func (s Spec) ParamFloat(key string, def float64) (float64, error) {
	v, ok := s.Params[key]
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case int:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err == nil {
			return f, nil
		}
	}
	return 0, fmt.Errorf("params.%s: want a number, got %v", key, v)
}

// ParamInt returns the integer parameter key, or def when absent.
func (s Spec) ParamInt(key string, def int) (int, error) {
	v, ok := s.Params[key]
	if !ok {
		return def, nil
	}
	switch x := v.(type) {
	case int:
		return x, nil
	case float64:
		if x == float64(int(x)) {
			return int(x), nil
		}
	case string:
		n, err := strconv.Atoi(x)
		if err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("params.%s: want an integer, got %v", key, v)
}

// ParamString returns the string parameter key, or def when absent.
func (s Spec) ParamString(key, def string) (string, error) {
	v, ok := s.Params[key]
	if !ok {
		return def, nil
	}
	if x, ok := v.(string); ok {
		return x, nil
	}
	return "", fmt.Errorf("params.%s: want a string, got %v", key, v)
}
