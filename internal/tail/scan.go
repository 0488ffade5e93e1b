package tail

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// scan expands the globs, starts following new files, notes renames, marks
// files no longer matched as orphans and forgets orphans that are fully
// read and idle. The first scan also resumes saved positions, including
// those of files renamed away while Sluice was stopped.
func (t *Tailer) scan(now time.Time) {
	seen := make(map[fileID]bool, len(t.byID))
	for _, g := range t.globs {
		matches, _ := filepath.Glob(g) // the only error is a bad pattern, ruled out by Validate
		for _, p := range matches {
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			id, ok := identityOf(fi)
			if !ok || seen[id] {
				continue
			}
			if f := t.byID[id]; f != nil {
				seen[id] = true
				t.rematch(f, p)
				continue
			}
			if f := t.open(p, now, false); f != nil {
				seen[f.id] = true
			}
		}
	}
	if t.saved != nil {
		t.adoptRenamed(now, seen)
		t.saved = nil
	}
	for _, f := range slices.Clone(t.order) {
		if seen[f.id] {
			continue
		}
		if !f.orphan {
			f.orphan = true
			t.log.Info("file no longer matches; reading it to its end", "path", f.path, "file_id", f.id.String())
		}
		if t.drained(f, now) {
			t.forget(f)
		}
	}
}

// rematch notes that f was found again at path p.
func (t *Tailer) rematch(f *file, p string) {
	if f.path != p {
		t.log.Info("file renamed", "from", f.path, "to", p, "file_id", f.id.String())
		f.path = p
		t.dirty = true
	}
	f.orphan = false
}

// open starts following the file at p, resuming a saved position if one
// matches. With savedOnly it follows the file only if a saved position
// matches. It returns nil if the file cannot be followed.
func (t *Tailer) open(p string, now time.Time, savedOnly bool) *file {
	fh, err := os.Open(p)
	if err != nil {
		t.log.Debug("cannot open file", "path", p, "err", err)
		return nil
	}
	fi, err := fh.Stat()
	var id fileID
	ok := err == nil && fi.Mode().IsRegular()
	if ok {
		id, ok = identityOf(fi)
	}
	if !ok {
		_ = fh.Close()
		return nil
	}
	if f := t.byID[id]; f != nil { // replaced between Stat and Open by a file already followed
		_ = fh.Close()
		t.rematch(f, p)
		return f
	}
	f := &file{id: id, key: []byte(id.String()), path: p, f: fh, size: fi.Size(), changed: now}
	cur, found := t.resume(f, fi.Size())
	if savedOnly && !found {
		_ = fh.Close()
		return nil
	}
	f.acked, f.read = cur, cur
	t.byID[id] = f
	t.order = append(t.order, f)
	t.files.Store(int64(len(t.order)))
	t.dirty = true
	if found {
		t.log.Info("resuming file", "path", p, "file_id", id.String(), "offset", cur.Offset)
	} else {
		t.log.Info("following new file", "path", p, "file_id", id.String(), "offset", cur.Offset)
	}
	return f
}

// resume returns where to start reading f: the saved position of f if its
// fingerprint still matches and the file is not shorter, else the start.
// A saved position recorded under another device number (which may change
// across reboots) is matched by inode and fingerprint. found reports
// whether a saved position was resumed.
func (t *Tailer) resume(f *file, size int64) (cur cursor, found bool) {
	e, ok := t.saved[f.id]
	if !ok {
		for _, s := range t.saved {
			if s.Inode == f.id.Ino && s.HeadLen > 0 {
				if head, err := t.readHead(f, size); err == nil && s.matchesHead(head) {
					e, ok = s, true
					break
				}
			}
		}
		if !ok {
			return cursor{}, false
		}
	}
	delete(t.saved, e.id())
	head, err := t.readHead(f, size)
	if err == nil && e.matchesHead(head) && size >= e.Offset {
		return cursor{Gen: e.Generation, Offset: e.Offset, Skip: e.Skipping, Head: head}, true
	}
	if e.id() == f.id {
		t.log.Warn("file truncated or replaced while stopped; reading it from the start",
			"path", f.path, "file_id", f.id.String(), "saved_offset", e.Offset, "size", size)
		return cursor{Gen: e.Generation + 1}, false
	}
	return cursor{}, false
}

// readHead returns a copy of the first up to headSize bytes of f, which is
// size bytes long.
func (t *Tailer) readHead(f *file, size int64) ([]byte, error) {
	buf := t.headBuf[:min(size, headSize)]
	n, err := f.f.ReadAt(buf, 0)
	if err != nil && err != io.EOF { // EOF: the file shrank meanwhile
		return nil, err
	}
	return slices.Clone(buf[:n]), nil
}

// adoptRenamed looks for the files of saved positions not matched by the
// globs in the directories they were last seen in: a file rotated while
// Sluice was stopped is read to its end and then forgotten. Other saved
// positions are dropped.
func (t *Tailer) adoptRenamed(now time.Time, seen map[fileID]bool) {
	listed := map[string][]os.DirEntry{}
	for _, e := range t.savedEntries() {
		if _, ok := t.saved[e.id()]; !ok {
			continue // resumed meanwhile under another device number
		}
		dir := filepath.Dir(e.Path)
		entries, ok := listed[dir]
		if !ok {
			entries, _ = os.ReadDir(dir)
			listed[dir] = entries
		}
		var adopted *file
		for _, de := range entries {
			if !de.Type().IsRegular() {
				continue
			}
			info, err := de.Info()
			if err != nil {
				continue
			}
			if id, ok := identityOf(info); !ok || id.Ino != e.Inode {
				continue
			}
			if adopted = t.open(filepath.Join(dir, de.Name()), now, true); adopted != nil {
				break
			}
		}
		if adopted != nil {
			t.log.Info("found file renamed while stopped; reading it to its end", "path", adopted.path, "was", e.Path)
			continue
		}
		delete(t.saved, e.id())
		t.dirty = true
		t.log.Info("dropping position of vanished file", "path", e.Path, "offset", e.Offset)
	}
}

// savedEntries lists the saved positions in path order.
func (t *Tailer) savedEntries() []positionEntry {
	out := make([]positionEntry, 0, len(t.saved))
	for _, e := range t.saved {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b positionEntry) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return cmpUint(a.Inode, b.Inode)
	})
	return out
}

// drained reports whether the orphan f is fully read and acknowledged and
// has not changed for RotateWait.
func (t *Tailer) drained(f *file, now time.Time) bool {
	fi, err := f.f.Stat()
	if err != nil {
		return false
	}
	if size := fi.Size(); size != f.size {
		f.size, f.changed = size, now
		return false
	}
	return f.acked.Offset >= f.size && now.Sub(f.changed) >= t.cfg.RotateWait
}

// forget stops following f.
func (t *Tailer) forget(f *file) {
	_ = f.f.Close()
	delete(t.byID, f.id)
	i := slices.Index(t.order, f)
	t.order = slices.Delete(t.order, i, i+1)
	if t.next > i {
		t.next--
	}
	if t.next >= len(t.order) {
		t.next = 0
	}
	t.files.Store(int64(len(t.order)))
	t.dirty = true
	t.log.Info("finished file that no longer matches", "path", f.path, "file_id", f.id.String(), "offset", f.acked.Offset)
}
