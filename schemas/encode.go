package schemas

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the event's JSON encoding to b: the same bytes as
// json.Marshal(e) for an event that DecodeEvent returned (whose Attrs is
// already compact and escaped), without reflection and without the second
// pass encoding/json makes over what MarshalJSON methods return. The
// collector and the tailer encode every event they accept with it.
//
// An event json.Marshal would fail on (occurred_at outside years 0-9999
// or zone offsets of ±24 h, Attrs not valid JSON) is encoded by json.Marshal, and its error returned.
func (e *Event) AppendJSON(b []byte) ([]byte, error) {
	_, zone := e.OccurredAt.Zone()
	if y := e.OccurredAt.Year(); y < 0 || y > 9999 || zone <= -24*3600 || zone >= 24*3600 || !canonicalRaw(e.Attrs) {
		out, err := json.Marshal(e)
		if err != nil {
			return b, err
		}
		return append(b, out...), nil
	}
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, e.EventID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"occurred_at":"`...)
	b = e.OccurredAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","user_id":`...)
	b = appendJSONString(b, e.UserID)
	if e.ItemID != "" {
		b = append(b, `,"item_id":`...)
		b = appendJSONString(b, e.ItemID)
	}
	if e.Channel != "" {
		b = append(b, `,"channel":`...)
		b = appendJSONString(b, e.Channel)
	}
	if e.City != "" {
		b = append(b, `,"city":`...)
		b = appendJSONString(b, e.City)
	}
	if len(e.Attrs) > 0 {
		b = append(b, `,"attrs":`...)
		b = append(b, e.Attrs...)
	}
	return append(b, '}'), nil
}

// canonicalRaw reports whether raw is empty or can be appended as it is:
// a JSON object that json.Marshal would neither compact nor escape, judged
// the way the decoder judges attrs (its grammar, no whitespace between
// tokens, rawEscapes, valid UTF-8). json.Marshal handles anything else.
func canonicalRaw(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return true
	}
	if raw[0] != '{' {
		return false
	}
	d := decoder{data: raw, maxDepth: maxSplitDepth}
	if d.skipValue(0) != nil || d.pos != len(raw) || d.spaces != 0 {
		return false
	}
	escape, ascii := rawEscapes(raw)
	return !escape && (ascii || utf8.Valid(raw))
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json writes as they are inside a
// string with HTML escaping on (its default): printable, and none of
// " \ < > &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()

// appendJSONString appends s quoted the way encoding/json quotes strings:
// \" \\ \b \f \n \r \t, other control bytes and < > & as \u00XX, U+2028
// and U+2029 escaped, each invalid UTF-8 byte as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
