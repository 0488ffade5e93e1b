// Package mining computes Sluice's offline results from the raw events
// table: trending items per day and city, co-shared item pairs, and
// per-user recommendations. Each job is split into pieces (one per UTC day
// or per user shard, CRC32(user_id) mod shards) that activities run on any
// worker; pieces write under their run's id, and a run becomes visible to
// readers in one short transaction when it is published (see runs.go).
//
// Definitions (the README repeats them):
//   - An item's users: distinct users who shared it (events of
//     Params.EventType, "share" by default) in the window.
//   - trending: per day and city, items ranked by users, then shares, then
//     item_id; the top TopN are kept. city "" holds the ranking over all
//     cities together (events without a city count only there).
//   - co_share, over a lookback window: N = users who shared anything;
//     support(A,B) = users who shared both A and B; confidence(A→B) =
//     support/users(A); lift(A,B) = support·N/(users(A)·users(B)). Pairs
//     with support < MinSupport are dropped; each item keeps its MaxPartners
//     strongest partners (support, then lift, then id). Users with more than
//     MaxBasket distinct items are left out of pair counting (bots and
//     test accounts would otherwise dominate it); they still count in N and
//     users(A).
//   - recommend: for every user active in the window, candidates are the
//     partners of the items they shared, minus the items they shared;
//     score = Σ confidence(a→item) over their shared items a, and via names
//     the a that contributed most. Fewer than K candidates are topped up
//     from the trending list of the user's city (the city of their latest
//     share; the all-cities list when they have none), score = the item's
//     users / the top item's users that day, via = the city.
package mining

import (
	"database/sql"
	"fmt"
	"regexp"
)

// Jobs, in the order a chained run executes them.
const (
	JobTrending  = "trending"
	JobCoShare   = "co_share"
	JobRecommend = "recommend"
)

// Jobs lists the jobs in execution order.
var Jobs = []string{JobTrending, JobCoShare, JobRecommend}

// Params tune the jobs; zero values take the defaults below.
type Params struct {
	// EventType is the event type mined (default "share").
	EventType string `json:"event_type,omitempty"`
	// TopN items kept per day and city by trending (default 100).
	TopN int `json:"top_n,omitempty"`
	// MinSupport is the least number of users a co-shared pair needs (default 2).
	MinSupport int `json:"min_support,omitempty"`
	// MaxPartners kept per item by co_share (default 100).
	MaxPartners int `json:"max_partners,omitempty"`
	// MaxBasket: users with more distinct items are left out of pair counting (default 500).
	MaxBasket int `json:"max_basket,omitempty"`
	// K recommendations per user (default 10).
	K int `json:"k,omitempty"`
	// Shards is the number of user shards co_share and recommend fan out to (default 8).
	Shards int `json:"shards,omitempty"`
	// CoShareRunID is the co_share run a recommend run reads; set by Begin.
	CoShareRunID int64 `json:"co_share_run_id,omitempty"`
}

var eventTypePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// WithDefaults fills in unset fields.
func (p Params) WithDefaults() Params {
	if p.EventType == "" {
		p.EventType = "share"
	}
	if p.TopN == 0 {
		p.TopN = 100
	}
	if p.MinSupport == 0 {
		p.MinSupport = 2
	}
	if p.MaxPartners == 0 {
		p.MaxPartners = 100
	}
	if p.MaxBasket == 0 {
		p.MaxBasket = 500
	}
	if p.K == 0 {
		p.K = 10
	}
	if p.Shards == 0 {
		p.Shards = 8
	}
	return p
}

// Validate names the first field that is out of range.
func (p Params) Validate() error {
	switch {
	case !eventTypePattern.MatchString(p.EventType):
		return fmt.Errorf("event_type: must be 1-32 characters of [a-z0-9_], got %q", p.EventType)
	case p.TopN < 1 || p.TopN > 1000:
		return fmt.Errorf("top_n: must be 1-1000, got %d", p.TopN)
	case p.MinSupport < 1:
		return fmt.Errorf("min_support: must be at least 1, got %d", p.MinSupport)
	case p.MaxPartners < 1 || p.MaxPartners > 10000:
		return fmt.Errorf("max_partners: must be 1-10000, got %d", p.MaxPartners)
	case p.MaxBasket < 2 || p.MaxBasket > 100000:
		return fmt.Errorf("max_basket: must be 2-100000, got %d", p.MaxBasket)
	case p.K < 1 || p.K > 1000:
		return fmt.Errorf("k: must be 1-1000, got %d", p.K)
	case p.Shards < 1 || p.Shards > 1024:
		return fmt.Errorf("shards: must be 1-1024, got %d", p.Shards)
	}
	return nil
}

// Stats count what a piece or a run read and wrote.
type Stats struct {
	RowsIn  int64 `json:"rows_in"`
	RowsOut int64 `json:"rows_out"`
	Users   int64 `json:"users,omitempty"`
	Pairs   int64 `json:"pairs,omitempty"`
}

// Add sums s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{RowsIn: s.RowsIn + o.RowsIn, RowsOut: s.RowsOut + o.RowsOut, Users: s.Users + o.Users, Pairs: s.Pairs + o.Pairs}
}

const dayLayout = "2006-01-02"

// readCommitted is the isolation of every mining transaction: pieces of a
// run write disjoint rows of the same tables at once, and REPEATABLE READ's
// gap locks would make their DELETE-then-INSERT deadlock.
var readCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
