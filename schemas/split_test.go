package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// checkSplit compares SplitArray with encoding/json on in: the same
// verdict on validity and, for a valid array, the same elements.
func checkSplit(t *testing.T, in string) {
	t.Helper()
	got, tooMany, err := SplitArray([]byte(in), 1<<20)
	if tooMany {
		t.Fatalf("SplitArray(%q): tooMany with a limit of 2^20", in)
	}
	var want []json.RawMessage
	wantErr := json.Unmarshal([]byte(in), &want)
	if wantErr != nil {
		// Either not JSON, or JSON that is not an array.
		if err == nil {
			t.Fatalf("SplitArray(%q) = %q, want an error (encoding/json: %v)", in, got, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("SplitArray(%q): %v, want %d elements", in, err, len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("SplitArray(%q) = %d elements %q, want %d", in, len(got), got, len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("SplitArray(%q)[%d] = %s, want %s", in, i, got[i], want[i])
		}
	}
}

func TestSplitArray(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`[ ]`,
		` [1] `,
		`["a,]\"}"]`,
		`[ "x" , {"a":[1,{"b":"]"}]} ,null,true, -1.5e3 ,[[]],{} ]`,
		"[\n\t{\"k\": \"v\\\\\"}\r\n]",
		`[{"s":"\u005d\\"},"\\",3]`,
		`["caf` + "\xc3\xa9" + `", "` + "\xff" + `"]`, // bytes >= 0x80 are not checked, as in json.Valid
		"[" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "]",
		// Invalid.
		``,
		`[`,
		`]`,
		`[1,]`,
		`[,1]`,
		`[1 2]`,
		`[1]]`,
		`[1] x`,
		`{"a":1}`,
		`"x"`,
		`[{"a":1]]`,
		`[{"a" 1}]`,
		`[{"a":1,}]`,
		`[{1:2}]`,
		`["a\qb"]`,
		"[\"a\tb\"]",
		`["\u12"]`,
		`[01]`,
		`[1.]`,
		`[-]`,
		`[1e]`,
		`[tru]`,
		`[nul, 1]`,
		`["unterminated]`,
	} {
		checkSplit(t, in)
	}
}

func TestSplitArrayErrorsNameTheOffset(t *testing.T) {
	for in, want := range map[string]string{
		`[{"a":1},{"b" 2}]`: `invalid JSON: unexpected '2' at offset 14`,
		`[1,2`:              `invalid JSON: unexpected end of input`,
		`[1] [2]`:           `trailing data after the JSON array at offset 4`,
		`{"a":1}`:           `invalid JSON: unexpected '{' at offset 0`,
	} {
		_, _, err := SplitArray([]byte(in), 10)
		if err == nil || err.Error() != want {
			t.Errorf("SplitArray(%s) error = %v, want %q", in, err, want)
		}
	}
}

func TestSplitArrayLimit(t *testing.T) {
	if got, tooMany, err := SplitArray([]byte(`[1,2,3]`), 3); err != nil || tooMany || len(got) != 3 {
		t.Errorf("3 elements, limit 3: %q, tooMany %v, err %v", got, tooMany, err)
	}
	if _, tooMany, err := SplitArray([]byte(`[1,2,3,4]`), 3); err != nil || !tooMany {
		t.Errorf("4 elements, limit 3: tooMany %v, err %v; want tooMany", tooMany, err)
	}
	deep := "[" + strings.Repeat("[", maxSplitDepth+1) + strings.Repeat("]", maxSplitDepth+1) + "]"
	if _, _, err := SplitArray([]byte(deep), 10); err == nil || !strings.Contains(err.Error(), "nested deeper than 10000 levels") {
		t.Errorf("nesting past %d levels: err %v", maxSplitDepth, err)
	}
}

func FuzzSplitArray(f *testing.F) {
	f.Add(`[1,"a",{"b":[2,"]"]}]`)
	f.Add(`[ {"x":"\\\""} , [ ] ]`)
	f.Add(`[{"a":1]]`)
	f.Add(`[1,]`)
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Count(in, "[")+strings.Count(in, "{") > maxSplitDepth {
			return // deeper than SplitArray goes, on purpose
		}
		checkSplit(t, in)
	})
}

func BenchmarkSplitArray(b *testing.B) {
	ev := `{"event_id":"e-000001","type":"share","occurred_at":"2026-12-01T10:00:00.000Z","user_id":"u-42","item_id":"r-7","channel":"wechat","city":"shanghai","attrs":{"k":"v"}}`
	body := []byte("[" + strings.Repeat(ev+",", 999) + ev + "]")
	b.SetBytes(int64(len(body)))
	b.Run("SplitArray", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := SplitArray(body, 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			if !json.Valid(body) {
				b.Fatal("invalid")
			}
		}
	})
}
