package schemas

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxAttrsDepth bounds the nesting inside attrs (MySQL JSON allows 100).
const maxAttrsDepth = 64

// maxSplitDepth bounds the nesting SplitArray accepts inside an element
// (encoding/json's limit); the event decoder then holds each element to
// maxAttrsDepth on its own.
const maxSplitDepth = 10000

// DecodeEvent strictly decodes one v1 event from a JSON object and validates
// it against now (see Event.Validate). Unknown or repeated top-level fields
// and fields of the wrong JSON type are rejected. Keys match exactly (no
// case folding). Every error is a *ValidationError.
//
// On success Attrs is nil or a compact object escaped the way json.Marshal
// escapes (<, >, &, U+2028, U+2029), so marshalling the event reproduces it
// byte for byte.
func DecodeEvent(data []byte, now time.Time) (Event, error) {
	return decodeEvent(data, now, false)
}

// DecodeEventShared is DecodeEvent without copying: the event's strings
// and Attrs share data's memory, so data must never change afterwards (a
// Kafka client's freshly allocated record value, not a reused buffer).
// It saves two allocations per event on the consumer's hot path.
func DecodeEventShared(data []byte, now time.Time) (Event, error) {
	return decodeEvent(data, now, true)
}

func decodeEvent(data []byte, now time.Time, shared bool) (Event, error) {
	d := decoder{shared: shared}
	e, err := d.decode(data)
	if err != nil {
		return Event{}, err
	}
	if err := e.validate(now, &d.broken); err != nil {
		return Event{}, err
	}
	return e, nil
}

// decoder is a small JSON scanner specialised for the event object; it is
// several times faster than encoding/json's reflection-based decoding.
type decoder struct {
	data   []byte
	str    string // data as a string; escape-free values are slices of it
	pos    int
	spaces int // number of whitespace runs skipped so far

	seen    [numFields]bool
	broken  [numFields]string // per-field rule broken during decoding
	unknown *ValidationError  // first unknown or repeated field
	shared  bool              // str and Attrs alias data instead of copying it

	maxDepth int // nesting skipValue accepts; 0 means maxAttrsDepth
}

// SplitArray returns the elements of the JSON array in data (whitespace
// around it allowed) as slices of data, and checks the whole body against
// the JSON grammar as json.Valid does, at a fraction of its cost. An
// element may be any JSON value nested up to 10000 levels; whether it is
// an event is for DecodeEvent to say. It stops with tooMany once the array
// holds more than limit elements, and with an error naming the byte offset
// at the first syntax error.
func SplitArray(data []byte, limit int) (elems [][]byte, tooMany bool, err error) {
	d := decoder{data: data, maxDepth: maxSplitDepth}
	d.skipSpace()
	if d.peek() != '[' {
		return nil, false, arrayError(d.syntaxError())
	}
	d.pos++
	d.skipSpace()
	if d.peek() == ']' {
		d.pos++
	} else {
	loop:
		for {
			d.skipSpace()
			start := d.pos
			if err := d.skipValue(0); err != nil {
				return nil, false, arrayError(err)
			}
			if len(elems) == limit {
				return nil, true, nil
			}
			elems = append(elems, data[start:d.pos:d.pos])
			d.skipSpace()
			switch d.peek() {
			case ',':
				d.pos++
			case ']':
				d.pos++
				break loop
			default:
				return nil, false, arrayError(d.syntaxError())
			}
		}
	}
	d.skipSpace()
	if d.pos < len(data) {
		return nil, false, fmt.Errorf("trailing data after the JSON array at offset %d", d.pos)
	}
	return elems, false, nil
}

// arrayError turns the decoder's body error into a plain one: SplitArray
// judges a whole request body, not one event.
func arrayError(err error) error {
	var ve *ValidationError
	if errors.As(err, &ve) && ve.Field == "" {
		return errors.New(strings.TrimPrefix(ve.Rule, "body: "))
	}
	return err
}

func bodyError(rule string) *ValidationError {
	return &ValidationError{Rule: "body: " + rule}
}

// decode parses the object into an Event. It returns syntax and
// unknown-field errors; per-field problems are left in d.broken.
func (d *decoder) decode(data []byte) (Event, error) {
	var e Event
	d.data = data
	d.skipSpace()
	if d.pos == len(data) {
		return e, bodyError("empty")
	}
	if data[d.pos] != '{' {
		return e, bodyError(ruleObject)
	}
	if d.shared {
		d.str = unsafe.String(unsafe.SliceData(data), len(data))
	} else {
		d.str = string(data)
	}
	d.pos++
	d.skipSpace()
	if d.peek() == '}' {
		d.pos++
	} else if err := d.members(&e); err != nil {
		return e, err
	}
	d.skipSpace()
	if d.pos < len(data) {
		return e, bodyError(fmt.Sprintf("trailing data after the JSON object at offset %d", d.pos))
	}
	if d.unknown != nil {
		return e, d.unknown
	}
	return e, nil
}

// members parses `"key": value` pairs up to and including the closing '}'.
func (d *decoder) members(e *Event) error {
	for {
		d.skipSpace()
		if d.peek() != '"' {
			return d.syntaxError()
		}
		f, key, err := d.key()
		if err != nil {
			return err
		}
		if err := d.member(e, f, key); err != nil {
			return err
		}
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return nil
		default:
			return d.syntaxError()
		}
	}
}

// quotedKeys open each field's member in compact JSON: `"event_id":`.
var quotedKeys = func() (k [numFields]string) {
	for f, name := range fieldNames {
		k[f] = `"` + name + `":`
	}
	return k
}()

// keysByInitial lists, for a key's first byte, the fields whose name
// starts with it (channel and city share 'c').
var keysByInitial = func() (t [256][]int) {
	for f, name := range fieldNames {
		t[name[0]] = append(t[name[0]], f)
	}
	return t
}()

// key reads a member's key (d.pos at its '"') and the colon after it, and
// returns the key's field index (-1 when unknown). The keys of compact JSON
// match quotedKeys whole, which spares scanning them as strings (a third
// of the decoder's time went to scanning strings, keys included: pprof of
// BenchmarkDecodeEventShared); anything else (escapes, spaces before the
// colon, unknown keys) takes the general path.
func (d *decoder) key() (int, string, error) {
	if rest := d.str[d.pos:]; len(rest) > 1 {
		for _, f := range keysByInitial[rest[1]] {
			if strings.HasPrefix(rest, quotedKeys[f]) {
				d.pos += len(quotedKeys[f])
				d.skipSpace()
				return f, fieldNames[f], nil
			}
		}
	}
	key, err := d.readString()
	if err != nil {
		return 0, "", err
	}
	if err := d.colon(); err != nil {
		return 0, "", err
	}
	return fieldIndex(key), key, nil
}

func fieldIndex(key string) int {
	switch key {
	case "event_id":
		return fieldEventID
	case "type":
		return fieldType
	case "occurred_at":
		return fieldOccurredAt
	case "user_id":
		return fieldUserID
	case "item_id":
		return fieldItemID
	case "channel":
		return fieldChannel
	case "city":
		return fieldCity
	case "attrs":
		return fieldAttrs
	}
	return -1
}

// member decodes the value of key, field f (-1: unknown), into e.
func (d *decoder) member(e *Event, f int, key string) error {
	if f < 0 || d.seen[f] {
		if d.unknown == nil {
			rule := "unknown field"
			if f >= 0 {
				rule = "repeated field"
			}
			d.unknown = &ValidationError{Field: shorten(key), Rule: rule}
		}
		return d.skipValue(0)
	}
	d.seen[f] = true
	switch f {
	case fieldAttrs:
		return d.attrs(e)
	case fieldOccurredAt:
		s, err := d.stringValue(f)
		if err != nil || s == "" {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !rfc3339Shape(s) {
			d.broken[f] = ruleTimestamp
			return nil
		}
		e.OccurredAt = t
		return nil
	}
	s, err := d.stringValue(f)
	switch f {
	case fieldEventID:
		e.EventID = s
	case fieldType:
		e.Type = s
	case fieldUserID:
		e.UserID = s
	case fieldItemID:
		e.ItemID = s
	case fieldChannel:
		e.Channel = s
	case fieldCity:
		e.City = s
	}
	return err
}

// rfc3339Shape rejects what time.Parse tolerates beyond RFC 3339: one-digit
// fields and a comma before the fraction.
func rfc3339Shape(s string) bool {
	return len(s) >= len("2006-01-02T15:04:05Z") && s[4] == '-' && s[7] == '-' && s[10] == 'T' &&
		s[13] == ':' && s[16] == ':' && s[19] != ','
}

// shorten keeps an offending key readable in error messages.
func shorten(key string) string {
	const max = 64
	if len(key) <= max {
		return key
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return key[:cut] + "..."
}

// stringValue reads the value of string field f; null reads as "" (absent)
// and other JSON types mark f as broken.
func (d *decoder) stringValue(f int) (string, error) {
	switch d.peek() {
	case '"':
		return d.readString()
	case 'n':
		return "", d.literal("null")
	}
	d.broken[f] = ruleString
	return "", d.skipValue(0)
}

// attrs reads the attrs value: an object, or null for absent.
func (d *decoder) attrs(e *Event) error {
	switch d.peek() {
	case 'n':
		return d.literal("null")
	case '{':
	default:
		d.broken[fieldAttrs] = ruleObject
		return d.skipValue(0)
	}
	start, spaces := d.pos, d.spaces
	if err := d.skipValue(0); err != nil {
		return err
	}
	raw := d.data[start:d.pos]
	attrs, rule := canonicalAttrs(raw, d.spaces == spaces, d.shared)
	e.Attrs = attrs
	d.broken[fieldAttrs] = rule
	return nil
}

// canonicalAttrs returns a copy of the syntactically valid object raw in
// compact form with json.Marshal's escaping (raw itself when shared and it
// already is), or the rule raw breaks.
func canonicalAttrs(raw []byte, compact, shared bool) (json.RawMessage, string) {
	escape, ascii := rawEscapes(raw)
	if !ascii && !utf8.Valid(raw) {
		return nil, ruleUTF8
	}
	if compact && !escape {
		if len(raw) > MaxAttrsBytes {
			return nil, ruleAttrsBytes // spare copying what will be rejected
		}
		if shared {
			return raw[:len(raw):len(raw)], ""
		}
		return bytes.Clone(raw), ""
	}
	// Rare path: json.Marshal compacts and escapes raw messages.
	out, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return nil, ruleObject
	}
	return out, ""
}

// rawEscapes reports whether raw holds what json.Marshal escapes in a raw
// message (<, >, &, U+2028, U+2029), and whether raw is all ASCII.
func rawEscapes(raw []byte) (escape, ascii bool) {
	ascii = true
	i := 0
	for ; i+8 <= len(raw); i += 8 {
		x := binary.LittleEndian.Uint64(raw[i:])
		if x&highs|hasByte(x, '<')|hasByte(x, '>')|hasByte(x, '&') != 0 {
			break
		}
	}
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '<' || c == '>' || c == '&':
			escape = true
		case c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8: // U+2028, U+2029
			escape = true
			ascii = false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return escape, ascii
}

func (d *decoder) peek() byte {
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

func (d *decoder) skipSpace() {
	if d.pos < len(d.data) && d.data[d.pos] > ' ' {
		return // compact JSON: no whitespace at all
	}
	start := d.pos
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
			continue
		}
		break
	}
	if d.pos != start {
		d.spaces++
	}
}

func (d *decoder) colon() error {
	d.skipSpace()
	if d.peek() != ':' {
		return d.syntaxError()
	}
	d.pos++
	d.skipSpace()
	return nil
}

func (d *decoder) syntaxError() error {
	if d.pos >= len(d.data) {
		return bodyError("invalid JSON: unexpected end of input")
	}
	c := d.data[d.pos]
	if c < 0x20 || c >= 0x7f {
		return bodyError(fmt.Sprintf("invalid JSON: unexpected byte 0x%02x at offset %d", c, d.pos))
	}
	return bodyError(fmt.Sprintf("invalid JSON: unexpected %q at offset %d", c, d.pos))
}

func (d *decoder) literal(lit string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
		for i := 0; i < len(lit) && d.pos < len(d.data) && d.data[d.pos] == lit[i]; i++ {
			d.pos++
		}
		return d.syntaxError()
	}
	d.pos += len(lit)
	return nil
}

// readString reads the string starting at d.pos (a '"') and unescapes it.
func (d *decoder) readString() (string, error) {
	start := d.pos + 1
	i := stringEnd(d.data, start)
	switch {
	case i == len(d.data):
		d.pos = i
		return "", d.syntaxError()
	case d.data[i] == '"':
		d.pos = i + 1
		return d.str[start:i], nil
	case d.data[i] == '\\':
		return d.readEscaped(start, i)
	}
	d.pos = i
	return "", d.syntaxError()
}

// stringStop marks the bytes that end the fast scan of a string: the
// closing quote, a backslash, or a control character (invalid in JSON).
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// readEscaped finishes readString from the first backslash at i. Lone
// surrogates become U+FFFD, as with encoding/json.
func (d *decoder) readEscaped(start, i int) (string, error) {
	buf := make([]byte, 0, i-start+32)
	buf = append(buf, d.data[start:i]...)
	for i < len(d.data) {
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(buf), nil
		case c < 0x20:
			d.pos = i
			return "", d.syntaxError()
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(d.data) {
			d.pos = len(d.data)
			return "", d.syntaxError()
		}
		switch esc := d.data[i+1]; esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(d.data[i+2:])
			if !ok {
				d.pos = i + 1
				return "", d.syntaxError()
			}
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := unicode.ReplacementChar
				if i+1 < len(d.data) && d.data[i] == '\\' && d.data[i+1] == 'u' {
					r2, _ = hex4(d.data[i+2:])
				}
				if pair := utf16.DecodeRune(r, r2); pair != unicode.ReplacementChar {
					r = pair
					i += 6
				} else {
					r = unicode.ReplacementChar
				}
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			d.pos = i + 1
			return "", d.syntaxError()
		}
		i += 2
	}
	d.pos = len(d.data)
	return "", d.syntaxError()
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipValue checks and skips any JSON value; depth counts enclosing
// containers below the event object.
func (d *decoder) skipValue(depth int) error {
	switch c := d.peek(); {
	case c == '"':
		return d.skipString()
	case c == '{', c == '[':
		limit := d.maxDepth
		if limit == 0 {
			limit = maxAttrsDepth
		}
		if depth >= limit {
			return bodyError(fmt.Sprintf("nested deeper than %d levels", limit))
		}
		return d.skipContainer(depth)
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return d.skipNumber()
	}
	return d.syntaxError()
}

// skipContainer skips an object or array starting at d.pos.
func (d *decoder) skipContainer(depth int) error {
	end := byte(']')
	isObject := d.data[d.pos] == '{'
	if isObject {
		end = '}'
	}
	d.pos++
	d.skipSpace()
	if d.peek() == end {
		d.pos++
		return nil
	}
	for {
		if isObject {
			if d.peek() != '"' {
				return d.syntaxError()
			}
			if err := d.skipString(); err != nil {
				return err
			}
			if err := d.colon(); err != nil {
				return err
			}
		}
		if err := d.skipValue(depth + 1); err != nil {
			return err
		}
		d.skipSpace()
		switch d.peek() {
		case ',':
			d.pos++
			d.skipSpace()
		case end:
			d.pos++
			return nil
		default:
			return d.syntaxError()
		}
	}
}

// skipString checks and skips the string starting at d.pos.
func (d *decoder) skipString() error {
	for i := d.pos + 1; i < len(d.data); i++ {
		i = stringEnd(d.data, i)
		if i == len(d.data) {
			break
		}
		c := d.data[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return nil
		case c < 0x20:
			d.pos = i
			return d.syntaxError()
		case i+1 < len(d.data):
			switch d.data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(d.data[i+2:]); !ok {
					d.pos = i + 1
					return d.syntaxError()
				}
				i += 5
			default:
				d.pos = i + 1
				return d.syntaxError()
			}
		}
	}
	d.pos = len(d.data)
	return d.syntaxError()
}

// skipNumber checks and skips a number per the JSON grammar.
func (d *decoder) skipNumber() error {
	if d.peek() == '-' {
		d.pos++
	}
	switch c := d.peek(); {
	case c == '0':
		d.pos++
	case '1' <= c && c <= '9':
		d.digits()
	default:
		return d.syntaxError()
	}
	if d.peek() == '.' {
		d.pos++
		if !d.digits() {
			return d.syntaxError()
		}
	}
	if c := d.peek(); c == 'e' || c == 'E' {
		d.pos++
		if c := d.peek(); c == '+' || c == '-' {
			d.pos++
		}
		if !d.digits() {
			return d.syntaxError()
		}
	}
	return nil
}

// digits skips a run of digits and reports whether there was any.
func (d *decoder) digits() bool {
	start := d.pos
	for d.pos < len(d.data) && '0' <= d.data[d.pos] && d.data[d.pos] <= '9' {
		d.pos++
	}
	return d.pos > start
}
