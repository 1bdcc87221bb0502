package repository

import (
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"strconv"
)

// fingerprint identifies the content of a version directory cheaply: a hash
// of every file's relative path, size and modification time. Poll mode
// reloads a serving version whose fingerprint changed (a model retrained in
// place) and does not retry a failed version until its fingerprint changes.
type fingerprint uint64

func fingerprintDir(dir string) (fingerprint, error) {
	h := fnv.New64a()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h.Write([]byte(rel))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, info.Size(), 10))
		h.Write([]byte{0})
		h.Write(strconv.AppendInt(nil, info.ModTime().UnixNano(), 10))
		h.Write([]byte{0})
		return nil
	})
	return fingerprint(h.Sum64()), err
}
