package mining

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/sqltext"
	"github.com/sluicedata/sluice/internal/store"
)

// CoShareGraph is a published co_share run loaded for recommending: each
// item's partners with their confidence.
type CoShareGraph struct {
	RunID    int64
	dict     map[string]int32
	items    []string
	partners [][]edge
}

type edge struct {
	to   int32
	conf float64
}

// LoadCoShareGraph reads a co_share run's rows.
func LoadCoShareGraph(ctx context.Context, db sqlx.QueryerContext, runID int64, progress Progress) (*CoShareGraph, error) {
	parts, err := store.RunPartitions(ctx, db, "co_shares")
	if err != nil {
		return nil, err
	}
	found := false
	for _, id := range parts {
		found = found || id == runID
	}
	if !found {
		return nil, fmt.Errorf("co_share run %d is gone (superseded and dropped); start the recommend run again", runID)
	}
	g := &CoShareGraph{RunID: runID, dict: map[string]int32{}}
	idx := func(id string) int32 {
		if i, ok := g.dict[id]; ok {
			return i
		}
		i := int32(len(g.items))
		g.dict[id] = i
		g.items = append(g.items, id)
		g.partners = append(g.partners, nil)
		return i
	}
	rows, err := db.QueryxContext(ctx, "SELECT item_id, other_item_id, confidence FROM co_shares WHERE run_id = ?", runID)
	if err != nil {
		return nil, fmt.Errorf("reading co_share run %d: %w", runID, err)
	}
	defer rows.Close()
	var a, b string
	var conf float64
	var n int64
	for rows.Next() {
		if err := rows.Scan(&a, &b, &conf); err != nil {
			return nil, err
		}
		ia, ib := idx(a), idx(b)
		g.partners[ia] = append(g.partners[ia], edge{ib, conf})
		if n++; progress != nil && n%progressEvery == 0 {
			progress("co_share_rows_loaded", n)
		}
	}
	return g, rows.Err()
}

// GraphCache keeps the last co_share graph a process loaded, so the shards
// of a recommend run on one worker read co_shares once.
type GraphCache struct {
	mu    sync.Mutex
	graph *CoShareGraph
}

// Get returns the graph of runID, loading it when it is not the cached one.
func (c *GraphCache) Get(ctx context.Context, db sqlx.QueryerContext, runID int64, progress Progress) (*CoShareGraph, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.graph != nil && c.graph.RunID == runID {
		return c.graph, nil
	}
	g, err := LoadCoShareGraph(ctx, db, runID, progress)
	if err != nil {
		return nil, err
	}
	c.graph = g
	return g, nil
}

// trendingItem is one entry of a city's fallback ranking.
type trendingItem struct {
	item  string
	score float64
}

// loadTrending reads the newest trending_daily day on or before day: per
// city, items in rank order with users / top users as score.
func loadTrending(ctx context.Context, db sqlx.QueryerContext, day time.Time) (map[string][]trendingItem, error) {
	rows, err := db.QueryxContext(ctx, `SELECT city, item_id, users FROM trending_daily
WHERE day = (SELECT MAX(day) FROM trending_daily WHERE day <= ?) ORDER BY city, rank_no`, day.Format(dayLayout))
	if err != nil {
		return nil, fmt.Errorf("reading trending_daily: %w", err)
	}
	defer rows.Close()
	out := map[string][]trendingItem{}
	var city, item string
	var users int64
	top := map[string]float64{}
	for rows.Next() {
		if err := rows.Scan(&city, &item, &users); err != nil {
			return nil, err
		}
		if _, ok := top[city]; !ok {
			top[city] = float64(users)
		}
		out[city] = append(out[city], trendingItem{item, float64(users) / top[city]})
	}
	return out, rows.Err()
}

// Recommendation is one ranked item for a user.
type Recommendation struct {
	Item   string
	Score  float64
	Reason string // "co_share" or "trending"
	Via    string
}

// recommender scores candidates for one user at a time with dense scratch
// arrays over the graph's items.
type recommender struct {
	g        *CoShareGraph
	trending map[string][]trendingItem
	k        int
	score    []float64
	best     []float64
	via      []int32
	touched  []int32
}

func newRecommender(g *CoShareGraph, trending map[string][]trendingItem, k int) *recommender {
	n := len(g.items)
	return &recommender{g: g, trending: trending, k: k, score: make([]float64, n), best: make([]float64, n), via: make([]int32, n)}
}

// recommend ranks items for a user who shared `shared` (sorted by id, so
// sums are taken in a fixed order) and lives in city.
func (r *recommender) recommend(shared []string, city string) []Recommendation {
	g := r.g
	has := make(map[string]bool, len(shared))
	for _, s := range shared {
		has[s] = true
	}
	for _, s := range shared {
		a, ok := g.dict[s]
		if !ok {
			continue
		}
		for _, e := range g.partners[a] {
			if has[g.items[e.to]] {
				continue
			}
			if r.score[e.to] == 0 {
				r.touched = append(r.touched, e.to)
			}
			r.score[e.to] += e.conf
			if e.conf > r.best[e.to] || (e.conf == r.best[e.to] && g.items[a] < g.items[r.via[e.to]]) {
				r.best[e.to], r.via[e.to] = e.conf, a
			}
		}
	}
	cands := r.touched
	sort.Slice(cands, func(i, j int) bool {
		si, sj := r.score[cands[i]], r.score[cands[j]]
		if si != sj {
			return si > sj
		}
		return g.items[cands[i]] < g.items[cands[j]]
	})
	out := make([]Recommendation, 0, r.k)
	for _, c := range cands {
		if len(out) == r.k {
			break
		}
		out = append(out, Recommendation{Item: g.items[c], Score: r.score[c], Reason: "co_share", Via: g.items[r.via[c]]})
	}
	for _, c := range r.touched {
		r.score[c], r.best[c], r.via[c] = 0, 0, 0
	}
	r.touched = r.touched[:0]
	if len(out) < r.k {
		list, ok := r.trending[city]
		if !ok || city == "" {
			list, city = r.trending[""], ""
		}
		chosen := make(map[string]bool, len(out))
		for _, o := range out {
			chosen[o.Item] = true
		}
		for _, t := range list {
			if len(out) == r.k {
				break
			}
			if has[t.item] || chosen[t.item] {
				continue
			}
			out = append(out, Recommendation{Item: t.item, Score: t.score, Reason: "trending", Via: city})
		}
	}
	return out
}

// RecommendShard writes the recommendations of one user shard's active
// users into the run's partition, replacing an earlier attempt's.
func RecommendShard(ctx context.Context, db *sqlx.DB, cache *GraphCache, run Run, shard int, progress Progress) (Stats, error) {
	p := run.Params
	g, err := cache.Get(ctx, db, p.CoShareRunID, progress)
	if err != nil {
		return Stats{}, err
	}
	trending, err := loadTrending(ctx, db, run.To)
	if err != nil {
		return Stats{}, err
	}
	s, err := scanShard(ctx, db, run.From, run.To, p.EventType, shard, p.Shards, progress)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{RowsIn: s.rows, Users: int64(len(s.users))}
	if _, err := db.ExecContext(ctx, "DELETE FROM recommendations WHERE run_id = ? AND CRC32(user_id) % ? = ?", run.ID, p.Shards, shard); err != nil {
		return st, fmt.Errorf("clearing shard %d: %w", shard, err)
	}
	users := make([]string, 0, len(s.users))
	for u := range s.users {
		users = append(users, u)
	}
	sort.Strings(users)
	rec := newRecommender(g, trending, p.K)
	w := newBulk(ctx, db, "INSERT INTO recommendations (run_id, user_id, rank_no, item_id, score, reason, via) VALUES ", progress)
	runID := strconv.FormatInt(run.ID, 10)
	var shared []string
	for _, u := range users {
		b := s.users[u]
		shared = shared[:0]
		for _, it := range b.items {
			shared = append(shared, s.items[it])
		}
		sort.Strings(shared)
		for i, r := range rec.recommend(shared, b.city) {
			err := w.row(func(buf []byte) []byte {
				buf = append(buf, '(')
				buf = append(buf, runID...)
				buf = append(buf, ',')
				buf = sqltext.AppendQuoted(buf, u)
				buf = append(buf, ',')
				buf = strconv.AppendInt(buf, int64(i+1), 10)
				buf = append(buf, ',')
				buf = sqltext.AppendQuoted(buf, r.Item)
				buf = append(buf, ',')
				buf = strconv.AppendFloat(buf, r.Score, 'g', -1, 64)
				buf = append(buf, ",'"...)
				buf = append(buf, r.Reason...)
				buf = append(buf, "',"...)
				buf = sqltext.AppendQuoted(buf, r.Via)
				return append(buf, ')')
			})
			if err != nil {
				return st, err
			}
		}
	}
	if err := w.flush(); err != nil {
		return st, err
	}
	st.RowsOut = w.rows
	return st, nil
}
