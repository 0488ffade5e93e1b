package sqltext

import "time"

// AppendDate appends t's UTC date as YYYY-MM-DD (what
// t.UTC().AppendFormat(b, "2006-01-02") gives, without parsing a layout:
// the batch writer renders two or three times per row).
func AppendDate(b []byte, t time.Time) []byte {
	y, m, d := t.UTC().Date()
	return appendYMD(b, y, int(m), d)
}

// AppendDateTime appends t in UTC as YYYY-MM-DD hh:mm:ss, followed by
// .ffffff when micro (MySQL DATETIME / DATETIME(6) literals; sub-microsecond
// digits are truncated, as "2006-01-02 15:04:05.000000" does).
func AppendDateTime(b []byte, t time.Time, micro bool) []byte {
	t = t.UTC()
	y, m, d := t.Date()
	b = appendYMD(b, y, int(m), d)
	hh, mm, ss := t.Clock()
	b = append(b, ' ')
	b = append2(b, hh)
	b = append(b, ':')
	b = append2(b, mm)
	b = append(b, ':')
	b = append2(b, ss)
	if micro {
		us := t.Nanosecond() / 1000
		b = append(b, '.',
			byte('0'+us/100000), byte('0'+us/10000%10), byte('0'+us/1000%10),
			byte('0'+us/100%10), byte('0'+us/10%10), byte('0'+us%10))
	}
	return b
}

func appendYMD(b []byte, y, m, d int) []byte {
	if y < 0 || y > 9999 {
		// Outside what MySQL stores; keep the general formatter's output.
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).AppendFormat(b, "2006-01-02")
	}
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-')
	b = append2(b, m)
	b = append(b, '-')
	return append2(b, d)
}

func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
