package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// testNow is the fixed validation clock of these tests.
var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// baseFields is a valid event as ordered key / raw JSON value pairs.
var baseFields = [][2]string{
	{"event_id", `"run1-000001"`},
	{"type", `"share"`},
	{"occurred_at", `"2026-11-21T10:00:00.123+08:00"`},
	{"user_id", `"u000123"`},
	{"item_id", `"r00042"`},
	{"channel", `"wechat"`},
	{"city", `"shanghai"`},
	{"attrs", `{"dish":"xiaolongbao","price":38}`},
}

// eventJSON returns baseFields with edits applied: "key=raw" sets (or
// appends) key to the raw JSON value, "-key" removes key.
func eventJSON(edits ...string) string {
	fields := append([][2]string(nil), baseFields...)
	for _, edit := range edits {
		if key, ok := strings.CutPrefix(edit, "-"); ok {
			for i, f := range fields {
				if f[0] == key {
					fields = append(fields[:i], fields[i+1:]...)
					break
				}
			}
			continue
		}
		key, raw, _ := strings.Cut(edit, "=")
		found := false
		for i, f := range fields {
			if f[0] == key {
				fields[i][1] = raw
				found = true
			}
		}
		if !found {
			fields = append(fields, [2]string{key, raw})
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + f[0] + `":` + f[1])
	}
	b.WriteByte('}')
	return b.String()
}

// q quotes s as a JSON string.
func q(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func attrsOfSize(n int) string {
	const overhead = len(`{"k":""}`)
	return `{"k":"` + strings.Repeat("x", n-overhead) + `"}`
}

func TestDecodeEventRules(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // "" means valid
	}{
		{"valid full", eventJSON(), ""},
		{"valid minimal", `{"event_id":"e1","type":"signup","occurred_at":"2026-11-21T10:00:00Z","user_id":"u1"}`, ""},
		{"valid surrounded by whitespace", " \n\t" + eventJSON() + "\r\n ", ""},

		{"event_id missing", eventJSON("-event_id"), "event_id: required"},
		{"event_id empty", eventJSON(`event_id=""`), "event_id: required"},
		{"event_id null", eventJSON(`event_id=null`), "event_id: required"},
		{"event_id 64", eventJSON("event_id=" + q(strings.Repeat("a", 64))), ""},
		{"event_id 65", eventJSON("event_id=" + q(strings.Repeat("a", 65))), "event_id: " + ruleEventID},
		{"event_id all allowed chars", eventJSON(`event_id="AZaz09._:-"`), ""},
		{"event_id space", eventJSON(`event_id="a b"`), "event_id: " + ruleEventID},
		{"event_id slash", eventJSON(`event_id="a/b"`), "event_id: " + ruleEventID},
		{"event_id multibyte", eventJSON(`event_id="分享1"`), "event_id: " + ruleEventID},
		{"event_id number", eventJSON(`event_id=12`), "event_id: must be a string"},

		{"type missing", eventJSON("-type"), "type: required"},
		{"type empty", eventJSON(`type=""`), "type: required"},
		{"type 32", eventJSON("type=" + q(strings.Repeat("x", 32))), ""},
		{"type 33", eventJSON("type=" + q(strings.Repeat("x", 33))), "type: " + ruleType},
		{"type upper case", eventJSON(`type="Share"`), "type: " + ruleType},
		{"type dash", eventJSON(`type="add-cart"`), "type: " + ruleType},
		{"type array", eventJSON(`type=["share"]`), "type: must be a string"},

		{"occurred_at missing", eventJSON("-occurred_at"), "occurred_at: required"},
		{"occurred_at empty", eventJSON(`occurred_at=""`), "occurred_at: required"},
		{"occurred_at number", eventJSON(`occurred_at=1763719200`), "occurred_at: must be a string"},
		{"occurred_at zone-less", eventJSON(`occurred_at="2026-11-21T10:00:00"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at date only", eventJSON(`occurred_at="2026-11-21"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at space separator", eventJSON(`occurred_at="2026-11-21 10:00:00Z"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at one-digit hour", eventJSON(`occurred_at="2026-11-21T1:00:00Z"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at comma fraction", eventJSON(`occurred_at="2026-11-21T10:00:00,5Z"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at offset without colon", eventJSON(`occurred_at="2026-11-21T10:00:00+0800"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at garbage", eventJSON(`occurred_at="yesterday"`), "occurred_at: " + ruleTimestamp},
		{"occurred_at UTC", eventJSON(`occurred_at="2026-11-21T10:00:00Z"`), ""},
		{"occurred_at negative offset", eventJSON(`occurred_at="2026-11-21T10:00:00.5-05:30"`), ""},
		{"occurred_at exactly 24h ahead", eventJSON(`occurred_at="2026-11-22T12:00:00Z"`), ""},
		{"occurred_at 24h+1s ahead", eventJSON(`occurred_at="2026-11-22T12:00:01Z"`), "occurred_at: more than 24h in the future"},
		{"occurred_at 24h+1s ahead in +08:00", eventJSON(`occurred_at="2026-11-22T20:00:01+08:00"`), "occurred_at: more than 24h in the future"},
		{"occurred_at long past", eventJSON(`occurred_at="2001-01-01T00:00:00Z"`), ""},

		{"user_id missing", eventJSON("-user_id"), "user_id: required"},
		{"user_id empty", eventJSON(`user_id=""`), "user_id: required"},
		{"user_id 64 multibyte", eventJSON("user_id=" + q(strings.Repeat("用", 64))), ""},
		{"user_id 65 multibyte", eventJSON("user_id=" + q(strings.Repeat("用", 65))), "user_id: must be at most 64 characters"},
		{"user_id 64 four-byte", eventJSON("user_id=" + q(strings.Repeat("😀", 64))), ""},
		{"user_id 65 ascii", eventJSON("user_id=" + q(strings.Repeat("u", 65))), "user_id: must be at most 64 characters"},
		{"user_id C0 control", eventJSON(`user_id="u\u0001"`), "user_id: " + ruleControl},
		{"user_id newline", eventJSON(`user_id="u\n1"`), "user_id: " + ruleControl},
		{"user_id DEL", eventJSON("user_id=\"u\x7f\""), "user_id: " + ruleControl},
		{"user_id C1 control", eventJSON(`user_id="u\u0085"`), "user_id: " + ruleControl},
		{"user_id U+00A0 ok", eventJSON(`user_id="u\u00a0"`), ""},
		{"user_id invalid UTF-8", eventJSON("user_id=\"u\xff\""), "user_id: " + ruleUTF8},
		{"user_id truncated UTF-8", eventJSON("user_id=\"u\xe7\x94\""), "user_id: " + ruleUTF8},
		{"user_id escaped", eventJSON(`user_id="u\u0031\u7528\ud83d\ude00\/"`), ""},
		{"user_id bool", eventJSON(`user_id=true`), "user_id: must be a string"},
		{"user_id object", eventJSON(`user_id={"id":"u1"}`), "user_id: must be a string"},

		{"item_id missing for share", eventJSON("-item_id"), "item_id: required for type share"},
		{"item_id missing for view", eventJSON("-item_id", `type="view"`), "item_id: required for type view"},
		{"item_id missing for order", eventJSON("-item_id", `type="order"`), "item_id: required for type order"},
		{"item_id empty for share", eventJSON(`item_id=""`), "item_id: required for type share"},
		{"item_id missing for other type", eventJSON("-item_id", `type="signup"`), ""},
		{"item_id 64 multibyte", eventJSON("item_id=" + q(strings.Repeat("店", 64))), ""},
		{"item_id 65 multibyte", eventJSON("item_id=" + q(strings.Repeat("店", 65))), "item_id: must be at most 64 characters"},
		{"item_id 65 for other type", eventJSON(`type="signup"`, "item_id="+q(strings.Repeat("r", 65))), "item_id: must be at most 64 characters"},
		{"item_id control", eventJSON(`item_id="r\t1"`), "item_id: " + ruleControl},
		{"item_id number", eventJSON(`item_id=42`), "item_id: must be a string"},

		{"channel missing", eventJSON("-channel"), ""},
		{"channel empty", eventJSON(`channel=""`), ""},
		{"channel 32 multibyte", eventJSON("channel=" + q(strings.Repeat("微", 32))), ""},
		{"channel 33 multibyte", eventJSON("channel=" + q(strings.Repeat("微", 33))), "channel: must be at most 32 characters"},
		{"channel control", eventJSON(`channel="we\u009fchat"`), "channel: " + ruleControl},
		{"channel number", eventJSON(`channel=1`), "channel: must be a string"},

		{"city missing", eventJSON("-city"), ""},
		{"city 64 multibyte", eventJSON("city=" + q(strings.Repeat("上", 64))), ""},
		{"city 65 multibyte", eventJSON("city=" + q(strings.Repeat("上", 65))), "city: must be at most 64 characters"},
		{"city invalid UTF-8", eventJSON("city=\"\xc3\x28\""), "city: " + ruleUTF8},
		{"city bool", eventJSON(`city=false`), "city: must be a string"},

		{"attrs missing", eventJSON("-attrs"), ""},
		{"attrs null", eventJSON("attrs=null"), ""},
		{"attrs empty object", eventJSON("attrs={}"), ""},
		{"attrs nested", eventJSON(`attrs={"a":[1,-2.5e3,true,false,null,{"b":"\u00e9\n"}],"c":{}}`), ""},
		{"attrs 8192 bytes", eventJSON("attrs=" + attrsOfSize(8192)), ""},
		{"attrs 8193 bytes", eventJSON("attrs=" + attrsOfSize(8193)), "attrs: " + ruleAttrsBytes},
		{"attrs 8192 bytes once compacted", eventJSON("attrs=" + strings.Replace(attrsOfSize(8192), ":", " : ", 1)), ""},
		{"attrs array", eventJSON(`attrs=[1,2]`), "attrs: must be a JSON object"},
		{"attrs string", eventJSON(`attrs="{}"`), "attrs: must be a JSON object"},
		{"attrs number", eventJSON(`attrs=1`), "attrs: must be a JSON object"},
		{"attrs invalid UTF-8", eventJSON("attrs={\"a\":\"\xff\"}"), "attrs: " + ruleUTF8},
		{"attrs 64 levels deep", eventJSON(`attrs={"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + "}"), ""},
		{"attrs 65 levels deep", eventJSON(`attrs={"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + "}"), "body: nested deeper than 64 levels"},

		{"unknown field", eventJSON(`zzz=1`), "zzz: unknown field"},
		{"unknown field before broken rule", eventJSON(`zzz=1`, "-user_id"), "zzz: unknown field"},
		{"field in other case", eventJSON("-user_id", `User_ID="u1"`), "User_ID: unknown field"},
		{"escaped key", eventJSON("-user_id", `user\u005fid="u1"`), ""},
		{"repeated field", strings.TrimSuffix(eventJSON(), "}") + `,"user_id":"u2"}`, "user_id: repeated field"},
		{"field order of errors", eventJSON("-user_id", `event_id=""`), "event_id: required"},
		{"type error after missing field", eventJSON("-event_id", `user_id=1`), "event_id: required"},

		{"empty body", "", "body: empty"},
		{"blank body", " \n", "body: empty"},
		{"array body", `[` + eventJSON() + `]`, "body: must be a JSON object"},
		{"null body", `null`, "body: must be a JSON object"},
		{"number body", `42`, "body: must be a JSON object"},
		{"string body", `"{}"`, "body: must be a JSON object"},
		{"empty object", `{}`, "event_id: required"},
		{"trailing object", eventJSON() + `{}`, "body: trailing data after the JSON object at offset 205"},
		{"trailing garbage", eventJSON() + ` x`, "body: trailing data after the JSON object at offset 206"},
		{"truncated", eventJSON()[:40], "body: invalid JSON: unexpected end of input"},
		{"missing colon", `{"event_id" "e1"}`, `body: invalid JSON: unexpected '"' at offset 12`},
		{"trailing comma", `{"event_id":"e1",}`, `body: invalid JSON: unexpected '}' at offset 17`},
		{"single quotes", `{'event_id':'e1'}`, `body: invalid JSON: unexpected '\'' at offset 1`},
		{"bad literal", eventJSON(`channel=nul`), `body: invalid JSON: unexpected ',' at offset 139`},
		{"bad escape", eventJSON(`user_id="\x41"`), `body: invalid JSON: unexpected 'x' at offset 99`},
		{"raw control in string", eventJSON("user_id=\"a\x01\""), `body: invalid JSON: unexpected byte 0x01 at offset 99`},
		{"leading zero in attrs", eventJSON(`attrs={"a":01}`), `body: invalid JSON: unexpected '1' at offset 177`},
		{"bad number in unknown field", eventJSON(`zzz=1.`), `body: invalid JSON: unexpected '}' at offset 213`},
		{"syntax error wins over rules", `{"user_id":1,`, `body: invalid JSON: unexpected end of input`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeEvent([]byte(tt.body), testNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("DecodeEvent: %v", err)
				}
				if err := e.Validate(testNow); err != nil {
					t.Fatalf("Validate after decode: %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("DecodeEvent error = %v (%T), want *ValidationError %q", err, err, tt.want)
			}
			if got := verr.Error(); got != tt.want {
				t.Fatalf("DecodeEvent error = %q, want %q", got, tt.want)
			}
			if field, _, _ := strings.Cut(tt.want, ": "); field != "body" && verr.Field != field {
				t.Fatalf("Field = %q, want %q", verr.Field, field)
			}
			if !reflectZero(e) {
				t.Fatalf("DecodeEvent returned a non-zero event with an error: %+v", e)
			}
		})
	}
}

func reflectZero(e Event) bool {
	return e.EventID == "" && e.Type == "" && e.OccurredAt.IsZero() && e.UserID == "" &&
		e.ItemID == "" && e.Channel == "" && e.City == "" && e.Attrs == nil
}

func TestDecodeEventValues(t *testing.T) {
	body := `{"event_id":"run1-7","type":"order","occurred_at":"2026-11-21T01:30:00.5+08:00",` +
		`"user_id":"u\u0031","item_id":"r9","channel":"qq","city":"成都",` +
		`"attrs": { "dish" : "<麻婆豆腐> & rice\u2028", "price" : 38.5 }}`
	e, err := DecodeEvent([]byte(body), testNow)
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	wantTime := time.Date(2026, 11, 21, 1, 30, 0, 5e8, time.FixedZone("", 8*3600))
	if !e.OccurredAt.Equal(wantTime) {
		t.Errorf("OccurredAt = %v, want %v", e.OccurredAt, wantTime)
	}
	if _, off := e.OccurredAt.Zone(); off != 8*3600 {
		t.Errorf("OccurredAt offset = %d, want the original +08:00", off)
	}
	want := Event{EventID: "run1-7", Type: "order", OccurredAt: e.OccurredAt, UserID: "u1", ItemID: "r9", Channel: "qq", City: "成都",
		Attrs: json.RawMessage(`{"dish":"\u003c麻婆豆腐\u003e \u0026 rice\u2028","price":38.5}`)}
	if !eventsEqual(e, want) {
		t.Errorf("DecodeEvent = %+v (attrs %s), want %+v (attrs %s)", e, e.Attrs, want, want.Attrs)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	wantOut := `{"event_id":"run1-7","type":"order","occurred_at":"2026-11-21T01:30:00.5+08:00","user_id":"u1","item_id":"r9",` +
		`"channel":"qq","city":"成都","attrs":{"dish":"\u003c麻婆豆腐\u003e \u0026 rice\u2028","price":38.5}}`
	if string(out) != wantOut {
		t.Errorf("Marshal = %s\nwant      %s", out, wantOut)
	}
}

func TestValidate(t *testing.T) {
	valid := func() Event {
		return Event{EventID: "e1", Type: "share", OccurredAt: testNow, UserID: "u1", ItemID: "r1"}
	}
	tests := []struct {
		name string
		edit func(*Event)
		want string
	}{
		{"valid", func(*Event) {}, ""},
		{"zero time", func(e *Event) { e.OccurredAt = time.Time{} }, "occurred_at: required"},
		{"just within future bound", func(e *Event) { e.OccurredAt = testNow.Add(MaxFuture) }, ""},
		{"past future bound", func(e *Event) { e.OccurredAt = testNow.Add(MaxFuture + time.Nanosecond) }, "occurred_at: more than 24h in the future"},
		{"first rule wins", func(e *Event) { e.UserID, e.Type = "", "" }, "type: required"},
		{"attrs object", func(e *Event) { e.Attrs = json.RawMessage(`{"a":1}`) }, ""},
		{"attrs not compact", func(e *Event) { e.Attrs = json.RawMessage(`{ "a" : 1 }`) }, ""},
		{"attrs big but compacts small", func(e *Event) {
			e.Attrs = json.RawMessage(`{"a":` + strings.Repeat(" ", MaxAttrsBytes) + `1}`)
		}, ""},
		{"attrs too big", func(e *Event) { e.Attrs = json.RawMessage(attrsOfSize(MaxAttrsBytes + 1)) }, "attrs: " + ruleAttrsBytes},
		{"attrs null literal", func(e *Event) { e.Attrs = json.RawMessage(`null`) }, "attrs: must be a JSON object"},
		{"attrs array", func(e *Event) { e.Attrs = json.RawMessage(`[]`) }, "attrs: must be a JSON object"},
		{"attrs invalid", func(e *Event) { e.Attrs = json.RawMessage(`{"a":}`) }, "attrs: must be a JSON object"},
		{"attrs invalid UTF-8", func(e *Event) { e.Attrs = json.RawMessage("{\"a\":\"\xff\"}") }, "attrs: " + ruleUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.edit(&e)
			err := e.Validate(testNow)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || verr.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestEventTimeKeys(t *testing.T) {
	tests := []struct {
		at         string
		date, minu string
	}{
		{"2026-11-21T01:30:45+08:00", "2026-11-20T00:00:00Z", "2026-11-20T17:30:00Z"},
		{"2026-11-20T23:59:59.999-05:00", "2026-11-21T00:00:00Z", "2026-11-21T04:59:00Z"},
		{"2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z"},
		{"2026-11-21T10:07:30+05:45", "2026-11-21T00:00:00Z", "2026-11-21T04:22:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.at, func(t *testing.T) {
			at, err := time.Parse(time.RFC3339Nano, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			e := Event{OccurredAt: at}
			if got := e.EventDate(); got.Format(time.RFC3339) != tt.date || got.Location() != time.UTC {
				t.Errorf("EventDate = %v, want %s UTC", got, tt.date)
			}
			if got := e.Minute(); got.Format(time.RFC3339Nano) != tt.minu || got.Location() != time.UTC {
				t.Errorf("Minute = %v, want %s UTC", got, tt.minu)
			}
		})
	}
}

func TestPartitionKeyAndItemRequired(t *testing.T) {
	if got := (&Event{UserID: "u1", ItemID: "r1"}).PartitionKey(); got != "r1" {
		t.Errorf("PartitionKey with item = %q, want r1", got)
	}
	if got := (&Event{UserID: "u1"}).PartitionKey(); got != "u1" {
		t.Errorf("PartitionKey without item = %q, want u1", got)
	}
	for typ, want := range map[string]bool{"share": true, "view": true, "order": true, "signup": false, "": false, "Share": false} {
		if got := ItemRequired(typ); got != want {
			t.Errorf("ItemRequired(%q) = %v, want %v", typ, got, want)
		}
	}
}

func TestValidationErrorText(t *testing.T) {
	tests := []struct {
		err  ValidationError
		want string
	}{
		{ValidationError{Field: "user_id", Rule: "required"}, "user_id: required"},
		{ValidationError{Rule: "body: must be a JSON object"}, "body: must be a JSON object"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	long := strings.Repeat("é", 100)
	_, err := DecodeEvent([]byte(eventJSON(long+"=1")), testNow)
	var verr *ValidationError
	if !errors.As(err, &verr) || len(verr.Field) > 70 || !strings.HasSuffix(verr.Rule, "unknown field") {
		t.Errorf("long unknown key: got %v", err)
	}
}

// eventsEqual compares events field by field; times must be the same
// instant in the same zone offset.
func eventsEqual(a, b Event) bool {
	_, offA := a.OccurredAt.Zone()
	_, offB := b.OccurredAt.Zone()
	return a.EventID == b.EventID && a.Type == b.Type && a.OccurredAt.Equal(b.OccurredAt) && offA == offB &&
		a.UserID == b.UserID && a.ItemID == b.ItemID && a.Channel == b.Channel && a.City == b.City &&
		bytes.Equal(a.Attrs, b.Attrs)
}

// stdEvent decodes the same shape with encoding/json, for differential
// checks.
type stdEvent struct {
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	OccurredAt string          `json:"occurred_at"`
	UserID     string          `json:"user_id"`
	ItemID     string          `json:"item_id"`
	Channel    string          `json:"channel"`
	City       string          `json:"city"`
	Attrs      json.RawMessage `json:"attrs"`
}

func FuzzDecodeEvent(f *testing.F) {
	seeds := []string{
		eventJSON(),
		eventJSON("-attrs", "-channel", "-city"),
		eventJSON(`attrs={"dish":"<麻婆豆腐>","tags":["spicy",1.5e2,null,true],"n":{"x":-0}}`),
		eventJSON(`user_id="u\u0031\ud83d\ude00\/"`, `occurred_at="2026-11-20T23:59:59.999999999-05:00"`),
		eventJSON(`attrs= { "a" : [ 1 , 2 ] } `),
		eventJSON(`type="signup"`, "-item_id"),
		eventJSON(`zzz=1`),
		eventJSON(`occurred_at="2026-11-21T10:00:00"`),
		eventJSON(`user_id=1`),
		eventJSON("user_id=\"\xff\""),
		`{"event_id":"e","type":"t","occurred_at":"2026-01-01T00:00:00Z","user_id":"u","user_id":"v"}`,
		`[]`, `null`, ``, `{`, `{"a":"\ud800"}`, `{} {}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEvent(data, testNow)
		es, errS := DecodeEventShared(bytes.Clone(data), testNow)
		if (err == nil) != (errS == nil) || (err != nil && err.Error() != errS.Error()) || !eventsEqual(e, es) || !bytes.Equal(e.Attrs, es.Attrs) {
			t.Fatalf("DecodeEventShared(%q) = %+v, %v; DecodeEvent = %+v, %v", data, es, errS, e, err)
		}
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %v is %T, not *ValidationError", err, err)
			}
			if !json.Valid(data) && verr.Field != "" {
				t.Fatalf("invalid JSON %q reported as field error %q", data, err)
			}
			if strings.HasPrefix(verr.Rule, "body: invalid JSON") && json.Valid(data) {
				t.Fatalf("valid JSON %q reported as %q", data, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if err := e.Validate(testNow); err != nil {
			t.Fatalf("decoded event does not validate: %v", err)
		}
		var std stdEvent
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("encoding/json rejects accepted body %q: %v", data, err)
		}
		if std.EventID != e.EventID || std.Type != e.Type || std.UserID != e.UserID || std.ItemID != e.ItemID ||
			std.Channel != e.Channel || std.City != e.City {
			t.Fatalf("decoded %+v, encoding/json decoded %+v", e, std)
		}
		if len(e.Attrs) > 0 {
			var a, b any
			if json.Unmarshal(e.Attrs, &a) != nil || json.Unmarshal(std.Attrs, &b) != nil || !jsonEqual(a, b) {
				t.Fatalf("attrs %s, encoding/json attrs %s", e.Attrs, std.Attrs)
			}
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if app, err := e.AppendJSON(nil); err != nil || !bytes.Equal(app, out) {
			t.Fatalf("AppendJSON = %s, %v; json.Marshal = %s", app, err, out)
		}
		e2, err := DecodeEvent(out, testNow)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if !eventsEqual(e, e2) {
			t.Fatalf("round trip changed the event:\n%+v (attrs %s)\n%+v (attrs %s)", e, e.Attrs, e2, e2.Attrs)
		}
	})
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

func BenchmarkDecodeEvent(b *testing.B) {
	body := []byte(eventJSON())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEventShared(b *testing.B) {
	body := []byte(eventJSON())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEventShared(body, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeEventSyntax checks the scanner against encoding/json on JSON
// edge cases, both inside attrs and in a decoded string field.
func TestDecodeEventSyntax(t *testing.T) {
	values := []string{
		`"\u00e9"`, `"\uZZZZ"`, `"\u00"`, `"\q"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ude00"`, `"\ud83d\u0041"`,
		`"\ud83dx"`, `"\ud83d\uZZZZ"`, `"\/\b\f\n\r\t\"\\"`, `"abc`, `"a\`, `"\u12`,
		`0`, `-0`, `-`, `01`, `1e`, `1E+5`, `2e-3`, `0.5`, `.5`, `1.`, `-x`,
		`[]`, `[1,]`, `[1 2]`, `[`, `{"a" 1}`, `{"a":1,}`, `{1:2}`, `tru`, `true`, `false`, `nul`,
	}
	for _, v := range values {
		for _, body := range []string{
			eventJSON(`attrs={"v":` + v + `}`),
			eventJSON(`attrs={"v":[` + v + `]}`),
			eventJSON(`user_id=` + v),
		} {
			e, err := DecodeEvent([]byte(body), testNow)
			var verr *ValidationError
			syntaxErr := errors.As(err, &verr) && verr.Field == ""
			if syntaxErr == json.Valid([]byte(body)) {
				t.Errorf("%s: DecodeEvent error %v, json.Valid %v", body, err, json.Valid([]byte(body)))
				continue
			}
			var std stdEvent
			if err == nil && (json.Unmarshal([]byte(body), &std) != nil || std.UserID != e.UserID) {
				t.Errorf("%s: user_id %q, encoding/json says %q", body, e.UserID, std.UserID)
			}
		}
	}
}
