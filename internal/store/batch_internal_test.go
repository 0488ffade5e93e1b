package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicedata/sluice/schemas"
)

func row(id string, at time.Time) *EventRow {
	return &EventRow{Event: schemas.Event{EventID: id, Type: "share", OccurredAt: at}}
}

func TestWithoutDuplicates(t *testing.T) {
	day1 := time.Date(2026, 12, 1, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2026, 12, 2, 0, 0, 1, 0, time.UTC)
	shanghai := time.FixedZone("CST", 8*3600)
	a, b, c := row("a", day1), row("b", day1), row("c-1", day1) // '-' inside an id
	xDay1, xDay2 := row("x", day1), row("x", day2)
	b2 := row("b", day1) // b's key again, later in the chunk
	// 07:30 on Dec 2 in Shanghai is 23:30 on Dec 1 UTC: the key's date is UTC.
	local := row("l", time.Date(2026, 12, 2, 7, 30, 0, 0, shanghai))
	six := []*EventRow{row("r0", day1), row("r1", day2), row("r2", day1), row("r3", day2), row("r4", day1), row("r5", day2)}

	maria := func(key string) string { return fmt.Sprintf("Duplicate entry '%s' for key 'PRIMARY'", key) }
	mysql8 := func(key string) string { return fmt.Sprintf("Duplicate entry '%s' for key 'events.PRIMARY'", key) }

	for _, tc := range []struct {
		name     string
		chunk    []*EventRow
		warnings []string
		inserted int
		want     []*EventRow // nil with ok false
		ok       bool
	}{
		{"mariadb", []*EventRow{a, b, c}, []string{maria("2026-12-01-b")}, 2, []*EventRow{a, c}, true},
		{"mysql8", []*EventRow{a, b, c}, []string{mysql8("2026-12-01-b")}, 2, []*EventRow{a, c}, true},
		{"id with dash", []*EventRow{a, b, c}, []string{maria("2026-12-01-c-1")}, 2, []*EventRow{a, b}, true},
		{"all skipped", []*EventRow{a, b}, []string{maria("2026-12-01-a"), mysql8("2026-12-01-b")}, 0, []*EventRow{}, true},
		{"two days, same id", []*EventRow{xDay1, xDay2}, []string{maria("2026-12-02-x")}, 1, []*EventRow{xDay1}, true},
		{"two days, other day", []*EventRow{xDay1, xDay2}, []string{maria("2026-12-01-x")}, 1, []*EventRow{xDay2}, true},
		{"non-UTC zone", []*EventRow{a, local}, []string{maria("2026-12-01-l")}, 1, []*EventRow{a}, true},
		{"non-UTC zone, local date", []*EventRow{a, local}, []string{maria("2026-12-02-l")}, 1, nil, false},
		{"chunk order", six, []string{maria("2026-12-02-r5"), maria("2026-12-01-r2"), maria("2026-12-02-r1")}, 3,
			[]*EventRow{six[0], six[3], six[4]}, true},
		{"key twice in the chunk, the first inserted", []*EventRow{a, b, b2, c}, []string{maria("2026-12-01-b")}, 3, []*EventRow{a, b, c}, true},
		{"key twice in the chunk, stored before", []*EventRow{a, b, b2, c}, []string{maria("2026-12-01-b"), maria("2026-12-01-b")}, 2,
			[]*EventRow{a, c}, true},
		{"row not in chunk", []*EventRow{a, b, c}, []string{maria("2026-12-01-z")}, 2, nil, false},
		{"right id, wrong date", []*EventRow{a, b, c}, []string{maria("2026-12-02-b")}, 2, nil, false},
		{"duplicated warning", []*EventRow{a, b, c}, []string{maria("2026-12-01-b"), maria("2026-12-01-b")}, 1, nil, false},
		{"same key, both formats", []*EventRow{a, b, c}, []string{maria("2026-12-01-b"), mysql8("2026-12-01-b")}, 1, nil, false},
		{"fewer warnings than skipped", []*EventRow{a, b, c}, []string{maria("2026-12-01-b")}, 1, nil, false},
		{"more warnings than skipped", []*EventRow{a, b, c}, []string{maria("2026-12-01-a"), maria("2026-12-01-b")}, 2, nil, false},
		{"no warnings, rows skipped", []*EventRow{a, b, c}, nil, 2, nil, false},
		{"other warning", []*EventRow{a, b, c}, []string{"Data truncated for column 'user_id' at row 2"}, 2, nil, false},
		{"no key clause", []*EventRow{a, b, c}, []string{"Duplicate entry '2026-12-01-b'"}, 2, nil, false},
		{"unquoted", []*EventRow{a, b, c}, []string{"Duplicate entry 2026-12-01-b for key 'PRIMARY'"}, 2, nil, false},
		{"empty", []*EventRow{a, b, c}, []string{""}, 2, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := withoutDuplicates(tc.chunk, tc.warnings, tc.inserted)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (rows %v)", ok, tc.ok, idsAt(got))
			}
			if !ok {
				if got != nil {
					t.Fatalf("rows = %v with ok false, want nil", idsAt(got))
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("rows = %v, want %v", idsAt(got), idsAt(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] { // the chunk's own rows, in its order
					t.Fatalf("rows = %v, want %v", idsAt(got), idsAt(tc.want))
				}
			}
		})
	}
}

func idsAt(rows []*EventRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Event.OccurredAt.UTC().Format(time.DateOnly) + "/" + r.Event.EventID
	}
	return out
}

// TestKeyOf: keyOf's day is the events row's event_date (the UTC date of
// occurred_at, schemas.Event.EventDate) counted in days since 1970, floored
// for earlier times.
func TestKeyOf(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	newYork := time.FixedZone("EST", -5*3600)
	times := []time.Time{
		time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 2, 7, 59, 59, 0, shanghai), // Dec 1 23:59:59 UTC
		time.Date(2026, 12, 2, 8, 0, 0, 0, shanghai),   // Dec 2 00:00 UTC
		time.Date(2026, 12, 1, 19, 0, 0, 0, newYork),   // Dec 2 00:00 UTC
		time.Date(2026, 12, 1, 18, 59, 59, 0, newYork), // Dec 1 23:59:59 UTC
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 30, 23, 59, 59, 500000000, time.UTC),
		time.Date(1970, 1, 1, 7, 0, 0, 0, shanghai), // Dec 31 1969 23:00 UTC
		time.Date(1901, 6, 15, 3, 4, 5, 0, time.UTC),
	}
	for _, at := range times {
		e := schemas.Event{EventID: "e", OccurredAt: at}
		want := e.EventDate().Unix() / 86400 // midnight UTC: exact
		if k := keyOf(&e); k.day != want || k.id != "e" {
			t.Errorf("keyOf(%s) = %+v, want day %d (%s)", at, k, want, e.EventDate().Format(time.DateOnly))
		}
	}
	// Same id: one key exactly when the UTC dates match.
	for _, x := range times {
		for _, y := range times {
			ex, ey := schemas.Event{EventID: "e", OccurredAt: x}, schemas.Event{EventID: "e", OccurredAt: y}
			same := ex.EventDate().Equal(ey.EventDate())
			if (keyOf(&ex) == keyOf(&ey)) != same {
				t.Errorf("keyOf(%s) == keyOf(%s) is %v, want %v", x, y, !same, same)
			}
		}
	}
	// Different ids on the same day are different keys.
	e1 := schemas.Event{EventID: "e1", OccurredAt: times[0]}
	e2 := schemas.Event{EventID: "e2", OccurredAt: times[0]}
	if keyOf(&e1) == keyOf(&e2) {
		t.Errorf("keyOf of e1 and e2 on the same day are equal")
	}
	// Spot checks that do not lean on EventDate.
	for _, c := range []struct {
		at  time.Time
		day int64
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), -1},
		{time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), -1},
		{time.Date(1969, 12, 30, 23, 59, 59, 0, time.UTC), -2},
		{time.Date(1970, 1, 1, 7, 0, 0, 0, shanghai), -1},
		{time.Date(1970, 1, 2, 7, 59, 59, 0, shanghai), 0},
	} {
		e := schemas.Event{EventID: "e", OccurredAt: c.at}
		if k := keyOf(&e); k.day != c.day {
			t.Errorf("keyOf(%s).day = %d, want %d", c.at, k.day, c.day)
		}
	}
}
