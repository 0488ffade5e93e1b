package tail

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicedata/sluice/internal/kafka"
	"github.com/sluicedata/sluice/schemas"
)

// logEventType is the type of events made from plain log lines.
const logEventType = "log"

// maxAttrsPathBytes caps the path recorded in the attrs of a log event.
const maxAttrsPathBytes = 1024

// readFile appends the complete lines f holds past its read cursor to b
// until b is full or f is exhausted. A file shorter than the cursor, or
// whose first bytes changed, was truncated or replaced: it is read again
// from the start under a new generation.
func (t *Tailer) readFile(f *file, b *batch, now time.Time) {
	fi, err := f.f.Stat()
	if err != nil {
		t.readError(f, err)
		return
	}
	size := fi.Size()
	if size != f.size {
		f.size, f.changed = size, now
	}
	r := f.read
	if size == r.Offset {
		return
	}
	head, err := t.readHead(f, size)
	if err != nil {
		t.readError(f, err)
		return
	}
	if size < r.Offset || !bytes.HasPrefix(head, r.Head) {
		t.log.Warn("file truncated or replaced; reading it again from the start",
			"path", f.path, "file_id", f.id.String(), "offset", r.Offset, "size", size)
		r = cursor{Gen: r.Gen + 1}
	}
	if len(head) > len(r.Head) {
		r.Head = head
	}

	final := f.orphan && now.Sub(f.changed) >= t.cfg.RotateWait
	for r.Offset < size && !b.full {
		want := min(int64(len(t.buf)), size-r.Offset)
		n, err := f.f.ReadAt(t.buf[:want], r.Offset)
		if n == 0 {
			if err != nil && err != io.EOF {
				t.readError(f, err)
			}
			break // shrank meanwhile: the next look notices
		}
		atEnd := r.Offset+int64(n) >= size
		used := t.consume(f, &r, b, t.buf[:n], final && atEnd, now)
		if used == 0 {
			break // a partial line: wait for its newline
		}
		r.Offset += int64(used)
		t.bytes.Add(int64(used))
		t.mBytes.Add(context.Background(), int64(used))
	}
	f.lastErr = ""
	if r.Gen != f.read.Gen || r.Offset != f.read.Offset || r.Skip != f.read.Skip || len(r.Head) != len(f.read.Head) {
		f.read = r
		b.touch(f)
	}
}

// readError logs err once for f until reading succeeds again.
func (t *Tailer) readError(f *file, err error) {
	if msg := err.Error(); msg != f.lastErr {
		f.lastErr = msg
		t.log.Warn("reading file failed", "path", f.path, "file_id", f.id.String(), "err", err)
	}
}

// consume turns the complete lines at the start of data, which starts at
// r.Offset, into records in b and returns how many bytes it used. Lines
// longer than MaxLineBytes are cut and their remainder skipped. With final
// the partial line at the end of data is taken as complete: its file was
// rotated away and has been idle for RotateWait.
func (t *Tailer) consume(f *file, r *cursor, b *batch, data []byte, final bool, now time.Time) int {
	limit := t.cfg.MaxLineBytes
	pos := 0
	for pos < len(data) && !b.full {
		rest := data[pos:]
		i := bytes.IndexByte(rest, '\n')
		if r.Skip {
			if i < 0 {
				return len(data)
			}
			pos += i + 1
			r.Skip = false
			continue
		}
		off := r.Offset + int64(pos)
		switch {
		case i >= 0 && i <= limit:
			t.emit(f, r, b, rest[:i], off, false, now)
			pos += i + 1
		case i > limit || len(rest) > limit:
			t.log.Warn("line longer than MaxLineBytes: shipping its start, skipping the rest up to the next newline",
				"path", f.path, "offset", off, "max_line_bytes", limit)
			t.emit(f, r, b, rest[:limit], off, true, now)
			pos += limit
			r.Skip = true
		case final:
			t.log.Info("shipping unterminated last line of a file that no longer matches", "path", f.path, "offset", off)
			t.emit(f, r, b, rest, off, false, now)
			pos = len(data)
		default:
			return pos
		}
	}
	return pos
}

// emit appends the record for one line starting at off to b. Blank lines
// are dropped.
func (t *Tailer) emit(f *file, r *cursor, b *batch, line []byte, off int64, cut bool, now time.Time) {
	if !cut {
		line = bytes.TrimSuffix(line, []byte{'\r'})
	}
	trimmed := bytes.TrimLeft(line, " \t\r\f\v")
	if len(bytes.TrimSpace(trimmed)) == 0 {
		return
	}
	var msg kafka.Message
	if trimmed[0] == '{' {
		var invalid bool
		msg, invalid = t.jsonRecord(f, line, off, now)
		if invalid {
			b.invalid++
		}
	} else {
		msg = t.logRecord(f, r, line, off, cut, now)
	}
	b.msgs = append(b.msgs, msg)
	b.bytes += len(msg.Value)
	b.full = len(b.msgs) >= t.cfg.BatchLines || b.bytes >= t.cfg.BatchBytes
}

// jsonRecord returns the record for a line holding a JSON object: the
// re-encoded event keyed by its partition key if it is a valid v1 event,
// else the raw line keyed by the file's identity, to be parked in
// dead_letters downstream. invalid reports the latter.
func (t *Tailer) jsonRecord(f *file, line []byte, off int64, now time.Time) (msg kafka.Message, invalid bool) {
	ev, err := schemas.DecodeEvent(line, now)
	if err == nil {
		var v []byte
		if v, err = ev.AppendJSON(nil); err == nil {
			return kafka.Message{Key: []byte(ev.PartitionKey()), Value: v}, false
		}
	}
	t.log.Debug("invalid JSON event line shipped raw", "path", f.path, "offset", off, "reason", err)
	return kafka.Message{Key: f.key, Value: bytes.Clone(line)}, true
}

// logAttrs are the attrs of a type=log event.
type logAttrs struct {
	File   string `json:"file"`
	Offset int64  `json:"offset"`
	Line   string `json:"line"`
	// Truncated is set when the line was cut, at MaxLineBytes or to keep
	// the attrs within schemas.MaxAttrsBytes.
	Truncated bool `json:"truncated,omitempty"`
}

// logRecord returns the type=log event for a plain line, keyed by its
// partition key (the source).
func (t *Tailer) logRecord(f *file, r *cursor, line []byte, off int64, cut bool, now time.Time) kafka.Message {
	ev := schemas.Event{
		EventID:    t.eventID(f, r, off),
		Type:       logEventType,
		OccurredAt: now.UTC().Truncate(time.Microsecond), // events.occurred_at is DATETIME(6)
		UserID:     t.source,
		Attrs:      encodeLogAttrs(f.path, off, line, cut),
	}
	if err := ev.Validate(now); err != nil { // cannot happen: every field is built valid
		t.log.Error("building log event failed; shipping the line raw", "path", f.path, "offset", off, "err", err)
		return kafka.Message{Key: f.key, Value: bytes.Clone(line)}
	}
	return kafka.Message{Key: t.sourceKey, Value: t.appendLogEvent(nil, &ev)}
}

// appendLogEvent appends the encoding of the log event ev, byte for byte
// what json.Marshal produces, without its cost: the event ID and type need
// no escaping, the source is encoded once and the attrs are already
// compact.
func (t *Tailer) appendLogEvent(dst []byte, ev *schemas.Event) []byte {
	dst = slices.Grow(dst, 96+len(ev.EventID)+len(t.sourceJSON)+len(ev.Attrs))
	dst = append(dst, `{"event_id":"`...)
	dst = append(dst, ev.EventID...)
	dst = append(dst, `","type":"`...)
	dst = append(dst, ev.Type...)
	dst = append(dst, `","occurred_at":"`...)
	dst = ev.OccurredAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","user_id":`...)
	dst = append(dst, t.sourceJSON...)
	dst = append(dst, `,"attrs":`...)
	dst = append(dst, ev.Attrs...)
	return append(dst, '}')
}

// encodeLogAttrs encodes the attrs of a log event, shortening the line so
// that the encoding stays within schemas.MaxAttrsBytes.
func encodeLogAttrs(path string, off int64, line []byte, cut bool) json.RawMessage {
	a := logAttrs{File: cutUTF8(path, maxAttrsPathBytes), Offset: off, Line: string(line), Truncated: cut}
	enc, _ := json.Marshal(&a) // strings and an integer always encode
	if len(enc) <= schemas.MaxAttrsBytes {
		return enc
	}
	a.Line, a.Truncated = "", true
	empty, _ := json.Marshal(&a)
	a.Line = string(line[:fitEncoded(line, schemas.MaxAttrsBytes-len(empty))])
	for {
		enc, _ = json.Marshal(&a)
		excess := len(enc) - schemas.MaxAttrsBytes
		if excess <= 0 || a.Line == "" {
			return enc
		}
		// Only if fitEncoded misjudged an escape: every byte of the line
		// takes at least one byte encoded, so this converges.
		a.Line = cutUTF8(a.Line, max(len(a.Line)-excess, 0))
	}
}

// fitEncoded returns the length of the longest prefix of line, ending on a
// character boundary, whose JSON string encoding by encoding/json (with
// HTML escaping) takes at most budget bytes, quotes excluded.
func fitEncoded(line []byte, budget int) int {
	used := 0
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		n := size
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n = 6 // \ufffd, \u2028, \u2029
		case r == '"', r == '\\', r == '\b', r == '\f', r == '\n', r == '\r', r == '\t':
			n = 2
		case r < 0x20, r == '<', r == '>', r == '&':
			n = 6 // \u00XX
		}
		if used+n > budget {
			return i
		}
		used += n
		i += size
	}
	return len(line)
}

// cutUTF8 returns the longest prefix of s within n bytes that does not end
// inside a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// eventID returns the event_id of the log line at off:
// "log:<dev-hex>-<inode-hex>-<head-hex>:<offset>". head is a hash of the
// file's generation and first line, so that a file truncated in place, or
// a new file that reuses an inode, does not repeat the IDs of the lines it
// replaced. The ID depends only on the file's identity and content and the
// offset, so a line read again after a crash gets the same ID.
func (t *Tailer) eventID(f *file, r *cursor, off int64) string {
	first := r.Head
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i+1]
	}
	first = first[:min(len(first), t.cfg.MaxLineBytes)]
	if f.idPrefix == "" || f.idGen != r.Gen || f.idHeadLen != len(first) {
		f.idPrefix = eventIDPrefix(f.id, r.Gen, first)
		f.idGen, f.idHeadLen = r.Gen, len(first)
	}
	return f.idPrefix + strconv.FormatInt(off, 10)
}

// maxOffsetDigits is the length of the largest int64 in decimal.
const maxOffsetDigits = 19

// eventIDPrefix returns "log:<dev-hex>-<inode-hex>-<head-hex>:" with as
// many hex digits of the head hash, up to 8, as keep every ID within
// schemas.MaxEventIDLen characters (at least 6 remain).
func eventIDPrefix(id fileID, gen uint64, first []byte) string {
	h := fnv.New64a()
	var g [8]byte
	binary.LittleEndian.PutUint64(g[:], gen)
	h.Write(g[:])
	h.Write(first)
	sum := fmt.Sprintf("%016x", h.Sum64())

	p := "log:" + id.String() + "-"
	digits := min(8, schemas.MaxEventIDLen-len(p)-1-maxOffsetDigits)
	return p + sum[:digits] + ":"
}
