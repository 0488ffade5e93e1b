// Package schemas defines Sluice's data contracts, among them the v1 event:
// its fields, limits and validation rules.
package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits of the v1 event. String limits count Unicode characters (runes),
// matching MySQL utf8mb4 VARCHAR(n) columns, except MaxAttrsBytes which
// counts bytes of the compact encoding.
const (
	MaxEventIDLen = 64
	MaxTypeLen    = 32
	MaxUserIDLen  = 64
	MaxItemIDLen  = 64
	MaxChannelLen = 32
	MaxCityLen    = 64
	MaxAttrsBytes = 8192
	// MaxFuture is how far past the validation clock occurred_at may lie.
	MaxFuture = 24 * time.Hour
)

// Event is one v1 event. The zero value is not valid; see Validate.
type Event struct {
	EventID    string          `json:"event_id"`    // idempotency key
	Type       string          `json:"type"`        // e.g. share, view, order
	OccurredAt time.Time       `json:"occurred_at"` // event time; marshals as RFC 3339 (nano) in its original zone
	UserID     string          `json:"user_id"`
	ItemID     string          `json:"item_id,omitempty"` // required for share, view and order
	Channel    string          `json:"channel,omitempty"` // e.g. wechat, qq, app
	City       string          `json:"city,omitempty"`
	Attrs      json.RawMessage `json:"attrs,omitempty"` // compact-encoded object, or nil
}

// ValidationError names the field and the rule an event broke. Field is ""
// for problems with the body as a whole, in which case Rule starts with
// "body: ".
type ValidationError struct {
	Field string
	Rule  string
}

// Error returns "<field>: <rule>", or just the rule when Field is "".
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return e.Field + ": " + e.Rule
}

// ItemRequired reports whether events of eventType must carry an item_id.
func ItemRequired(eventType string) bool {
	switch eventType {
	case "share", "view", "order":
		return true
	}
	return false
}

// EventDate returns UTC midnight of OccurredAt's UTC date, the partition key
// of the event tables.
func (e *Event) EventDate() time.Time {
	y, m, d := e.OccurredAt.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Minute returns OccurredAt in UTC truncated to the minute.
func (e *Event) Minute() time.Time {
	return e.OccurredAt.UTC().Truncate(time.Minute)
}

// PartitionKey returns the Kafka message key: ItemID if set, else UserID.
func (e *Event) PartitionKey() string {
	if e.ItemID != "" {
		return e.ItemID
	}
	return e.UserID
}

// Validate returns the first rule e breaks, as a *ValidationError, checking
// fields in the order event_id, type, occurred_at, user_id, item_id,
// channel, city, attrs. now is the clock occurred_at is bounded by.
func (e *Event) Validate(now time.Time) error {
	return e.validate(now, nil)
}

// Field indexes, in validation order.
const (
	fieldEventID = iota
	fieldType
	fieldOccurredAt
	fieldUserID
	fieldItemID
	fieldChannel
	fieldCity
	fieldAttrs
	numFields
)

var fieldNames = [numFields]string{"event_id", "type", "occurred_at", "user_id", "item_id", "channel", "city", "attrs"}

// Rules whose text is shared between the decoder and Validate.
const (
	ruleRequired   = "required"
	ruleString     = "must be a string"
	ruleTimestamp  = "must be an RFC 3339 timestamp with zone"
	ruleObject     = "must be a JSON object"
	ruleUTF8       = "must be valid UTF-8"
	ruleControl    = "must not contain control characters"
	ruleFuture     = "more than 24h in the future"
	ruleEventID    = "must be 1-64 characters of [A-Za-z0-9._:-]"
	ruleType       = "must be 1-32 characters of [a-z0-9_]"
	ruleAttrsBytes = "must be at most 8192 bytes"
)

// validate checks the fields in order. decoded, when not nil, holds rules
// the decoder already found broken per field (they win over the checks
// below) and means Attrs is known to be a canonical compact object.
func (e *Event) validate(now time.Time, decoded *[numFields]string) error {
	for f := range numFields {
		var rule string
		if decoded != nil {
			rule = decoded[f]
		}
		if rule == "" {
			rule = e.check(f, now, decoded == nil)
		}
		if rule != "" {
			return &ValidationError{Field: fieldNames[f], Rule: rule}
		}
	}
	return nil
}

// check returns the rule field f breaks, or "". checkAttrsJSON asks for a
// full syntax check of Attrs, which the decoder has already done.
func (e *Event) check(f int, now time.Time, checkAttrsJSON bool) string {
	switch f {
	case fieldEventID:
		return checkToken(e.EventID, MaxEventIDLen, &eventIDChars, ruleEventID)
	case fieldType:
		return checkToken(e.Type, MaxTypeLen, &typeChars, ruleType)
	case fieldOccurredAt:
		if e.OccurredAt.IsZero() {
			return ruleRequired
		}
		if e.OccurredAt.Sub(now) > MaxFuture {
			return ruleFuture
		}
	case fieldUserID:
		if e.UserID == "" {
			return ruleRequired
		}
		return checkText(e.UserID, MaxUserIDLen)
	case fieldItemID:
		if e.ItemID == "" {
			if ItemRequired(e.Type) {
				return "required for type " + e.Type
			}
			return ""
		}
		return checkText(e.ItemID, MaxItemIDLen)
	case fieldChannel:
		return checkText(e.Channel, MaxChannelLen)
	case fieldCity:
		return checkText(e.City, MaxCityLen)
	case fieldAttrs:
		return checkAttrs(e.Attrs, checkAttrsJSON)
	}
	return ""
}

var eventIDChars, typeChars = charSet("A-Za-z0-9._:-"), charSet("a-z0-9_")

// charSet builds a byte lookup table from ranges like "a-z" and single
// characters; a '-' that ends spec stands for itself.
func charSet(spec string) (set [256]bool) {
	for i := 0; i < len(spec); i++ {
		if i+2 < len(spec) && spec[i+1] == '-' {
			for c := spec[i]; c <= spec[i+2]; c++ {
				set[c] = true
			}
			i += 2
			continue
		}
		set[spec[i]] = true
	}
	return set
}

// checkToken checks an ASCII identifier: required, at most max bytes, all
// in set.
func checkToken(s string, max int, set *[256]bool, rule string) string {
	if s == "" {
		return ruleRequired
	}
	if len(s) > max {
		return rule
	}
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return rule
		}
	}
	return ""
}

// checkText checks free text: valid UTF-8, no C0/C1 control characters
// (U+0000-U+001F, U+007F-U+009F), at most max runes.
func checkText(s string, max int) string {
	if len(s) <= max && plainASCII(s) {
		return ""
	}
	n := 0
	for i := 0; i < len(s); n++ {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return ruleControl
			}
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return ruleUTF8
			}
			if r <= 0x9f {
				return ruleControl
			}
			i += size
		}
		if n == max {
			return fmt.Sprintf("must be at most %d characters", max)
		}
	}
	return ""
}

// checkAttrs checks that attrs is absent or an object within the size limit.
// With checkJSON it also checks the syntax and measures the compact size,
// as Attrs may come from anywhere rather than from the decoder.
func checkAttrs(attrs json.RawMessage, checkJSON bool) string {
	if len(attrs) == 0 {
		return ""
	}
	if checkJSON {
		if attrs[0] != '{' || !json.Valid(attrs) {
			return ruleObject
		}
		if !utf8.Valid(attrs) {
			return ruleUTF8
		}
		if len(attrs) > MaxAttrsBytes {
			var buf bytes.Buffer
			if err := json.Compact(&buf, attrs); err != nil || buf.Len() > MaxAttrsBytes {
				return ruleAttrsBytes
			}
		}
		return ""
	}
	if len(attrs) > MaxAttrsBytes {
		return ruleAttrsBytes
	}
	return ""
}
