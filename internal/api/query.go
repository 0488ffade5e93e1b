package api

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"github.com/sluicedata/sluice/internal/mining"
	"slices"
	"strings"
	"sync"
	"time"
)

// Answer shapes. Each head's JSON ends with an empty "items" list, which
// newAnswer replaces with the encoded items.

type trendingHead struct {
	Window string `json:"window"`
	City   string `json:"city"`
	Source string `json:"source"`
	From   string `json:"from"`
	To     string `json:"to"`
	Empty  []int  `json:"items"`
}

type trendingItem struct {
	Rank   int    `json:"rank"`
	ItemID string `json:"item_id"`
	Shares int64  `json:"shares"`
	Users  *int64 `json:"users,omitempty"`
}

type recsHead struct {
	UserID string `json:"user_id"`
	RunID  *int64 `json:"run_id"`
	Empty  []int  `json:"items"`
}

type recItem struct {
	Rank   int     `json:"rank"`
	ItemID string  `json:"item_id"`
	Score  float64 `json:"score"`
	Reason string  `json:"reason"`
	Via    string  `json:"via"`
}

type alsoHead struct {
	ItemID string `json:"item_id"`
	RunID  *int64 `json:"run_id"`
	Empty  []int  `json:"items"`
}

type alsoItem struct {
	Rank       int     `json:"rank"`
	ItemID     string  `json:"item_id"`
	Support    int64   `json:"support"`
	Confidence float64 `json:"confidence"`
	Lift       float64 `json:"lift"`
}

const dateLayout = "2006-01-02"

// Mining jobs whose current run the API reads.
const (
	jobCoShare   = mining.JobCoShare
	jobRecommend = mining.JobRecommend
)

// liveSnapshot is the live (window=1h) trending of every city, read in one
// query: one MySQL scan per refresh serves all-cities and per-city requests.
// Its rankings are never modified once built; answers are rendered from them
// on first use and kept.
type liveSnapshot struct {
	from, to time.Time
	all      []trendingItem            // top MaxLimit over all cities
	byCity   map[string][]trendingItem // top MaxLimit per city

	mu      sync.Mutex
	answers map[string]*answer // by city, "" = all
}

// answer renders (once) the snapshot's answer for city ("" = all cities).
func (s *liveSnapshot) answer(city string) (*answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.answers[city]; ok {
		return a, nil
	}
	items, known := s.all, true
	if city != "" {
		items, known = s.byCity[city]
	}
	a, err := newAnswer(trendingHead{Window: "1h", City: city, Source: "live",
		From: s.from.Format(time.RFC3339), To: s.to.Format(time.RFC3339), Empty: []int{}}, items)
	if err == nil && known { // unknown cities are not remembered: their number is unbounded
		s.answers[city] = a
	}
	return a, err
}

// loadLive sums item_counts_minute's shares per city and item over the last
// 60 minute buckets, the current (partial) one included, and ranks them by
// shares, then item_id (utf8mb4_bin order is byte order, as in Go).
func (h *handler) loadLive(ctx context.Context) (*liveSnapshot, error) {
	now := h.opts.Now().UTC()
	last := now.Truncate(time.Minute)
	from := last.Add(-59 * time.Minute)
	rows, err := h.db.QueryContext(ctx, `SELECT city, item_id, SUM(cnt) FROM item_counts_minute
		WHERE event_date BETWEEN ? AND ? AND minute_start BETWEEN ? AND ? AND type = 'share'
		GROUP BY city, item_id`,
		from.Format(dateLayout), last.Format(dateLayout), from, last)
	if err != nil {
		return nil, fmt.Errorf("reading item_counts_minute: %w", err)
	}
	defer rows.Close()
	byCity := map[string][]trendingItem{}
	total := map[string]int64{}
	for rows.Next() {
		var city string
		var it trendingItem
		if err := rows.Scan(&city, &it.ItemID, &it.Shares); err != nil {
			return nil, fmt.Errorf("reading item_counts_minute: %w", err)
		}
		byCity[city] = append(byCity[city], it)
		total[it.ItemID] += it.Shares
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading item_counts_minute: %w", err)
	}
	all := make([]trendingItem, 0, len(total))
	for id, n := range total {
		all = append(all, trendingItem{ItemID: id, Shares: n})
	}
	s := &liveSnapshot{from: from, to: now, all: topByShares(all), byCity: byCity, answers: map[string]*answer{}}
	for city, items := range byCity {
		byCity[city] = topByShares(items)
	}
	return s, nil
}

// topByShares sorts items by shares descending, then item_id, keeps the
// first MaxLimit and numbers them.
func topByShares(items []trendingItem) []trendingItem {
	slices.SortFunc(items, func(a, b trendingItem) int {
		if c := cmp.Compare(b.Shares, a.Shares); c != 0 {
			return c
		}
		return strings.Compare(a.ItemID, b.ItemID)
	})
	items = slices.Clip(items[:min(len(items), MaxLimit)])
	for i := range items {
		items[i].Rank = i + 1
	}
	return items
}

// loadDaily reads the top MaxLimit items of trending_daily over the days of
// a 24h (yesterday, today) or 7d (today-6 .. today) window, for one city or,
// with city "", the all-cities ranking stored under city ”.
func (h *handler) loadDaily(ctx context.Context, window, city string) (*answer, error) {
	now := h.opts.Now().UTC()
	days := 2
	if window == "7d" {
		days = 7
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	from := today.AddDate(0, 0, 1-days)
	head := trendingHead{Window: window, City: city, Source: "trending_daily",
		From: from.Format(time.RFC3339), To: now.Format(time.RFC3339), Empty: []int{}}
	rows, err := h.db.QueryContext(ctx, `SELECT item_id, SUM(users) AS users, SUM(shares) AS shares FROM trending_daily
		WHERE day BETWEEN ? AND ? AND city = ?
		GROUP BY item_id ORDER BY users DESC, shares DESC, item_id LIMIT ?`,
		from.Format(dateLayout), today.Format(dateLayout), city, MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("reading trending_daily: %w", err)
	}
	defer rows.Close()
	var items []trendingItem
	for rows.Next() {
		it := trendingItem{Rank: len(items) + 1, Users: new(int64)}
		if err := rows.Scan(&it.ItemID, it.Users, &it.Shares); err != nil {
			return nil, fmt.Errorf("reading trending_daily: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading trending_daily: %w", err)
	}
	return newAnswer(head, items)
}

// loadRecommendations reads a user's top MaxLimit recommendations of the
// current recommend run. The run is chosen in the same statement (a
// one-row derived table LEFT JOINed to the rows), so the answer never mixes
// runs and still names the run when the user has no rows.
func (h *handler) loadRecommendations(ctx context.Context, userID string) (*answer, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT m.run_id, r.rank_no, r.item_id, r.score, r.reason, r.via
		FROM (SELECT MAX(run_id) AS run_id FROM mining_runs WHERE job = ? AND status = 'succeeded') m
		LEFT JOIN recommendations r ON r.run_id = m.run_id AND r.user_id = ?
		ORDER BY r.rank_no LIMIT ?`, jobRecommend, userID, MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("reading recommendations: %w", err)
	}
	defer rows.Close()
	head := recsHead{UserID: userID, Empty: []int{}}
	var items []recItem
	for rows.Next() {
		var runID, rank sql.NullInt64
		var item, reason, via sql.NullString
		var score sql.NullFloat64
		if err := rows.Scan(&runID, &rank, &item, &score, &reason, &via); err != nil {
			return nil, fmt.Errorf("reading recommendations: %w", err)
		}
		if runID.Valid {
			head.RunID = &runID.Int64
		}
		if rank.Valid {
			items = append(items, recItem{Rank: int(rank.Int64), ItemID: item.String, Score: score.Float64, Reason: reason.String, Via: via.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading recommendations: %w", err)
	}
	return newAnswer(head, items)
}

// loadAlsoShared reads an item's top MaxLimit partners of the current
// co_share run, like loadRecommendations.
func (h *handler) loadAlsoShared(ctx context.Context, itemID string) (*answer, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT m.run_id, c.rank_no, c.other_item_id, c.support, c.confidence, c.lift
		FROM (SELECT MAX(run_id) AS run_id FROM mining_runs WHERE job = ? AND status = 'succeeded') m
		LEFT JOIN co_shares c ON c.run_id = m.run_id AND c.item_id = ?
		ORDER BY c.rank_no LIMIT ?`, jobCoShare, itemID, MaxLimit)
	if err != nil {
		return nil, fmt.Errorf("reading co_shares: %w", err)
	}
	defer rows.Close()
	head := alsoHead{ItemID: itemID, Empty: []int{}}
	var items []alsoItem
	for rows.Next() {
		var runID, rank, support sql.NullInt64
		var other sql.NullString
		var conf, lift sql.NullFloat64
		if err := rows.Scan(&runID, &rank, &other, &support, &conf, &lift); err != nil {
			return nil, fmt.Errorf("reading co_shares: %w", err)
		}
		if runID.Valid {
			head.RunID = &runID.Int64
		}
		if rank.Valid {
			items = append(items, alsoItem{Rank: int(rank.Int64), ItemID: other.String, Support: support.Int64, Confidence: conf.Float64, Lift: lift.Float64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading co_shares: %w", err)
	}
	return newAnswer(head, items)
}
