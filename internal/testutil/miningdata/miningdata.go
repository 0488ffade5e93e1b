// Package miningdata is the small hand-checked dataset the mining tests
// share, with the results worked out by hand.
//
// Day D, shares:
//
//	u1 Shanghai: A B C      u4 Beijing: B C
//	u2 Shanghai: A B        u5 Beijing: A A (twice)
//	u3 Beijing:  A B D      u6 (no city): D E
//	u7 Shanghai: A C
//
// plus a view by u1 of X (not a share: ignored) and, on D-1, u1 sharing E
// in Shanghai (outside a one-day co_share window).
package miningdata

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/schemas"
)

// Events returns the dataset for day D (a UTC midnight), all in its first
// minute so D = today is never in the future.
func Events(d time.Time, idPrefix string) []schemas.Event {
	var out []schemas.Event
	add := func(day time.Time, typ, user, item, city string) {
		n := len(out) + 1
		out = append(out, schemas.Event{EventID: fmt.Sprintf("%s%d", idPrefix, n), Type: typ,
			OccurredAt: day.Add(time.Duration(n) * time.Second), UserID: user, ItemID: item, Channel: "wechat", City: city})
	}
	for _, s := range []struct{ user, city, items string }{
		{"u1", "Shanghai", "A B C"}, {"u2", "Shanghai", "A B"}, {"u3", "Beijing", "A B D"}, {"u4", "Beijing", "B C"},
		{"u5", "Beijing", "A A"}, {"u6", "", "D E"}, {"u7", "Shanghai", "A C"},
	} {
		for _, it := range strings.Fields(s.items) {
			add(d, "share", s.user, it, s.city)
		}
	}
	add(d, "view", "u1", "X", "Shanghai")
	add(d.AddDate(0, 0, -1), "share", "u1", "E", "Shanghai")
	return out
}

// Shares is the number of share events in Events (both days), and ShareUsers
// the users who shared on D.
const (
	Shares     = 17
	SharesOnD  = 16
	ShareUsers = 7
)

// Trending is trending_daily for D-1..D as "day city rank item users
// shares" lines ordered by day, city, rank. Ties on users and shares fall to
// item_id; city "" is all cities together.
func Trending(d time.Time) string {
	d1, d0 := d.AddDate(0, 0, -1).Format(time.DateOnly), d.Format(time.DateOnly)
	return strings.Join([]string{
		d1 + "  1 E 1 1", d1 + " Shanghai 1 E 1 1",
		d0 + "  1 A 5 6", d0 + "  2 B 4 4", d0 + "  3 C 3 3", d0 + "  4 D 2 2", d0 + "  5 E 1 1",
		d0 + " Beijing 1 A 2 3", d0 + " Beijing 2 B 2 2", d0 + " Beijing 3 C 1 1", d0 + " Beijing 4 D 1 1",
		d0 + " Shanghai 1 A 3 3", d0 + " Shanghai 2 B 2 2", d0 + " Shanghai 3 C 2 2",
	}, "\n")
}

// CoShares is co_shares over D alone with min_support 2, as "item rank
// other support confidence lift" lines (4 decimals). N = 7 users; users(A,
// B, C) = 5, 4, 3; support AB 3, AC 2, BC 2 (AD, BD, DE have 1).
const CoShares = "A 1 B 3 0.6000 1.0500\n" + // 3/5, 3*7/(5*4)
	"A 2 C 2 0.4000 0.9333\n" + // 2/5, 2*7/(5*3)
	"B 1 A 3 0.7500 1.0500\n" + // 3/4
	"B 2 C 2 0.5000 1.1667\n" + // 2/4, 2*7/(4*3)
	"C 1 B 2 0.6667 1.1667\n" + // same support as A: higher lift first
	"C 2 A 2 0.6667 0.9333"

// Recommendations with k = 3 from CoShares and Trending, as "user rank item
// score reason via" lines. u1 shared everything its partners and city offer.
const Recommendations = "u2 1 C 0.9000 co_share B\n" + // 0.4 (A→C) + 0.5 (B→C)
	"u3 1 C 0.9000 co_share B\n" +
	"u4 1 A 1.4167 co_share B\n" + // 0.75 + 2/3
	"u4 2 D 0.5000 trending Beijing\n" +
	"u5 1 B 0.6000 co_share A\n" +
	"u5 2 C 0.4000 co_share A\n" +
	"u5 3 D 0.5000 trending Beijing\n" + // top-up comes after co-shares
	"u6 1 A 1.0000 trending \n" + // no city: the all-cities list
	"u6 2 B 0.8000 trending \n" +
	"u6 3 C 0.6000 trending \n" +
	"u7 1 B 1.2667 co_share C" // 0.6 + 2/3, via the larger

// RecommendationRows is the number of lines in Recommendations.
const RecommendationRows = 11

// Rows runs q and formats its rows as lines of space-separated values
// (floats with 4 decimals, dates as YYYY-MM-DD) for exact comparisons.
func Rows(t testing.TB, db *sqlx.DB, q string, args ...any) string {
	t.Helper()
	r, err := db.Queryx(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		vals, err := r.SliceScan()
		if err != nil {
			t.Fatal(err)
		}
		var f []string
		for _, v := range vals {
			switch v := v.(type) {
			case []byte:
				f = append(f, string(v))
			case float64:
				f = append(f, fmt.Sprintf("%.4f", v))
			case time.Time:
				f = append(f, v.Format(time.DateOnly))
			default:
				f = append(f, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(f, " "))
	}
	return strings.Join(out, "\n")
}
