package sqltext

import "testing"

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
