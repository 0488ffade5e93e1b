// Package sqltext renders values as MySQL SQL text and LOAD DATA fields, for
// bulk statements built without the driver's per-value interpolation.
package sqltext

// AppendQuoted appends s as a MySQL string literal (backslash escapes,
// the server's default sql_mode without NO_BACKSLASH_ESCAPES).
func AppendQuoted(b []byte, s string) []byte {
	b = append(b, '\'')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch s[i] {
		case 0:
			esc = '0'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case 0x1a:
			esc = 'Z'
		case '\'', '"', '\\':
			esc = s[i]
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', esc)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '\'')
}

// AppendTSV appends s as a LOAD DATA field (FIELDS TERMINATED BY '\t'
// ESCAPED BY '\\' LINES TERMINATED BY '\n').
func AppendTSV(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc byte
		switch s[i] {
		case 0:
			esc = '0'
		case '\n':
			esc = 'n'
		case '\r':
			esc = 'r'
		case '\t':
			esc = 't'
		case '\\':
			esc = '\\'
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', esc)
		start = i + 1
	}
	return append(b, s[start:]...)
}
