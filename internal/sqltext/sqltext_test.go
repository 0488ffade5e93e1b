package sqltext

import (
	"testing"
	"time"
)

func TestAppendQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            `'plain'`,
		"it's":             `'it\'s'`,
		"a\\b\"c":          `'a\\b\"c'`,
		"nl\ncr\r\x00\x1a": `'nl\ncr\r\0\Z'`,
		"上海":               `'上海'`,
	} {
		if got := string(AppendQuoted(nil, in)); got != want {
			t.Errorf("AppendQuoted(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendTSV(t *testing.T) {
	for in, want := range map[string]string{
		"plain":       `plain`,
		"tab\there":   `tab\there`,
		"nl\n\\x\x00": `nl\n\\x\0`,
	} {
		if got := string(AppendTSV(nil, in)); got != want {
			t.Errorf("AppendTSV(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendDateTimeMatchesTimeFormat(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	times := []time.Time{
		time.Date(2026, 12, 1, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 2, 7, 5, 9, 123456789, shanghai), // the UTC date is the day before
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(2024, 2, 29, 12, 0, 0, 500, time.UTC),
	}
	for i := 0; i < 2000; i++ {
		times = append(times, time.Unix(int64(i)*7919*3607, int64(i)*104729).In(shanghai))
	}
	for _, tm := range times {
		u := tm.UTC()
		if got, want := string(AppendDate(nil, tm)), u.Format("2006-01-02"); got != want {
			t.Fatalf("AppendDate(%v) = %q, want %q", tm, got, want)
		}
		if got, want := string(AppendDateTime(nil, tm, false)), u.Format("2006-01-02 15:04:05"); got != want {
			t.Fatalf("AppendDateTime(%v, false) = %q, want %q", tm, got, want)
		}
		if got, want := string(AppendDateTime([]byte("x"), tm, true)), "x"+u.Format("2006-01-02 15:04:05.000000"); got != want {
			t.Fatalf("AppendDateTime(%v, true) = %q, want %q", tm, got, want)
		}
	}
}
