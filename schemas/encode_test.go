package schemas

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 30, 23, 59, 59, 120_000_000, time.UTC)
	base := Event{EventID: "e-1", Type: "share", OccurredAt: at, UserID: "u-1"}
	with := func(f func(*Event)) Event { e := base; f(&e); return e }
	for _, e := range []Event{
		base,
		with(func(e *Event) { e.ItemID, e.Channel, e.City = "r-7", "wechat", "上海" }),
		with(func(e *Event) { e.UserID = "q\"b\\s/\b\f\n\r\t\x00\x1f\x7f<>&\u2028\u2029😀" }),
		with(func(e *Event) { e.City = "bad \xff\xfe utf-8 \xe2\x80" }),
		with(func(e *Event) { e.OccurredAt = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", -5*3600-30*60)) }),
		with(func(e *Event) { e.OccurredAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 5*3600+45*60+30)) }),
		with(func(e *Event) { e.Attrs = json.RawMessage(`{"a":[1,"x y",{"b":null}],"c":"\u00e9\"\\"}`) }),
		// What DecodeEvent never leaves: json.Marshal compacts and escapes.
		with(func(e *Event) { e.Attrs = json.RawMessage(`{ "a" : "<b>&" }`) }),
		with(func(e *Event) { e.Attrs = json.RawMessage(`{"a": [1, 2]}`) }),
		with(func(e *Event) { e.Attrs = json.RawMessage("{\"a\":\"\u2028\"}") }),
		with(func(e *Event) { e.Attrs = json.RawMessage("{\"a\":\"\xff\"}") }),
	} {
		want, wantErr := json.Marshal(&e)
		got, err := e.AppendJSON([]byte("prefix"))
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("AppendJSON(%+v) = %s, %v; json.Marshal = %s, %v", e, got, err, want, wantErr)
		}
	}
}

func TestAppendJSONErrorsLikeMarshal(t *testing.T) {
	for _, e := range []Event{
		{EventID: "e", Type: "t", UserID: "u", OccurredAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{EventID: "e", Type: "t", UserID: "u", OccurredAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))},
		{EventID: "e", Type: "t", UserID: "u", OccurredAt: time.Now(), Attrs: json.RawMessage(`{"a":}`)},
	} {
		if _, err := json.Marshal(&e); err == nil {
			t.Fatalf("json.Marshal(%+v) succeeded; the case tests nothing", e)
		}
		if _, err := e.AppendJSON(nil); err == nil {
			t.Errorf("AppendJSON(%+v) succeeded where json.Marshal fails", e)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	e, err := DecodeEvent([]byte(eventJSON()), testNow)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = e.AppendJSON(buf[:0])
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&e)
		}
	})
}
