package tail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// positionsVersion is the format version of the positions file.
const positionsVersion = 1

// positionsDoc is the content of the positions file.
type positionsDoc struct {
	Version int             `json:"version"`
	Files   []positionEntry `json:"files"`
}

// positionEntry records how far one file, identified by device and inode,
// has been shipped and acknowledged.
type positionEntry struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	// Path is where the file was last seen.
	Path string `json:"path"`
	// Offset is the first byte not yet acknowledged.
	Offset int64 `json:"offset"`
	// Generation counts the times the file was found truncated or
	// replaced under the same identity; it keeps event IDs unique.
	Generation uint64 `json:"generation,omitempty"`
	// Skipping means Offset lies inside the remainder of a cut line.
	Skipping bool `json:"skipping,omitempty"`
	// HeadLen and HeadSHA256 fingerprint the first up to 256 bytes of the
	// file, so that a reused inode is not mistaken for the file.
	HeadLen    int    `json:"head_len"`
	HeadSHA256 string `json:"head_sha256,omitempty"`
}

func (e positionEntry) id() fileID { return fileID{Dev: e.Dev, Ino: e.Inode} }

// matchesHead reports whether head starts with the bytes e fingerprints.
func (e positionEntry) matchesHead(head []byte) bool {
	if len(head) < e.HeadLen {
		return false
	}
	sum := sha256.Sum256(head[:e.HeadLen])
	return hex.EncodeToString(sum[:]) == e.HeadSHA256
}

// entryOf returns the positions entry of f's acknowledged cursor.
func entryOf(f *file) positionEntry {
	sum := sha256.Sum256(f.acked.Head)
	return positionEntry{
		Dev:        f.id.Dev,
		Inode:      f.id.Ino,
		Path:       f.path,
		Offset:     f.acked.Offset,
		Generation: f.acked.Gen,
		Skipping:   f.acked.Skip,
		HeadLen:    len(f.acked.Head),
		HeadSHA256: hex.EncodeToString(sum[:]),
	}
}

// loadPositions reads the positions file at path. A missing file means no
// positions.
func loadPositions(path string) (map[fileID]positionEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[fileID]positionEntry{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading positions file: %w", err)
	}
	var doc positionsDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding positions file %s (delete it to start over): %w", path, err)
	}
	if doc.Version != positionsVersion {
		return nil, fmt.Errorf("decoding positions file %s: version %d, want %d", path, doc.Version, positionsVersion)
	}
	out := make(map[fileID]positionEntry, len(doc.Files))
	for i, e := range doc.Files {
		if e.Offset < 0 || e.HeadLen < 0 || e.HeadLen > headSize || len(e.HeadSHA256) != 2*sha256.Size {
			return nil, fmt.Errorf("decoding positions file %s: files[%d]: invalid offset or fingerprint", path, i)
		}
		out[e.id()] = e
	}
	return out, nil
}

// writePositions replaces the positions file at path with entries
// atomically: it writes and syncs a temporary file in the same directory,
// renames it over path and syncs the directory.
func writePositions(path string, entries []positionEntry) (err error) {
	data, err := json.MarshalIndent(positionsDoc{Version: positionsVersion, Files: entries}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding positions: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating positions directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating temporary positions file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("writing temporary positions file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing temporary positions file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing temporary positions file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming positions file into place: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("syncing positions directory: %w", err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
