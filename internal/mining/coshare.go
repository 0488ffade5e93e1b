package mining

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/sqltext"
)

// partial is one user shard's contribution to a co_share run: counts that
// add up across shards because shards hold disjoint users. Pairs are kept
// as sorted keys with run lengths (8 + 4 bytes per distinct pair, and 8
// bytes per pair occurrence while counting) rather than in a hash map.
type partial struct {
	items     []string // local dictionary
	itemUsers []int64  // users who shared items[i]
	users     int64    // users who shared anything
	keys      []uint64 // distinct pairs, sorted
	counts    []uint32 // users per pair
}

func pairKey(a, b int32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(uint32(a))<<32 | uint64(uint32(b))
}

func splitKey(k uint64) (int32, int32) { return int32(uint32(k >> 32)), int32(uint32(k)) }

// countPairs turns a shard's baskets into partial counts: every pair of
// every basket as a key, sorted, then counted by runs.
func countPairs(s *shardBaskets, maxBasket int) *partial {
	p := &partial{items: s.items, itemUsers: make([]int64, len(s.items))}
	n := 0
	for _, b := range s.users {
		if k := len(b.items); k <= maxBasket {
			n += k * (k - 1) / 2
		}
	}
	keys := make([]uint64, 0, n)
	for _, b := range s.users {
		p.users++
		for _, it := range b.items {
			p.itemUsers[it]++
		}
		if len(b.items) > maxBasket {
			continue
		}
		for i, a := range b.items {
			for _, c := range b.items[i+1:] {
				keys = append(keys, pairKey(a, c))
			}
		}
	}
	slices.Sort(keys)
	distinct := keys[:0]
	for i, k := range keys {
		if i > 0 && k == keys[i-1] {
			p.counts[len(p.counts)-1]++
			continue
		}
		distinct = append(distinct, k)
		p.counts = append(p.counts, 1)
	}
	p.keys = slices.Clip(distinct)
	return p
}

const partialMagic = "SCP1"

// encode serialises the partial: magic, users, items (name, users), pairs
// sorted by key (a, b, count), all as uvarints.
func (p *partial) encode() []byte {
	b := make([]byte, 0, 64+len(p.items)*16+len(p.keys)*8)
	b = append(b, partialMagic...)
	b = binary.AppendUvarint(b, uint64(p.users))
	b = binary.AppendUvarint(b, uint64(len(p.items)))
	for i, it := range p.items {
		b = binary.AppendUvarint(b, uint64(len(it)))
		b = append(b, it...)
		b = binary.AppendUvarint(b, uint64(p.itemUsers[i]))
	}
	b = binary.AppendUvarint(b, uint64(len(p.keys)))
	for i, k := range p.keys {
		a, c := splitKey(k)
		b = binary.AppendUvarint(b, uint64(a))
		b = binary.AppendUvarint(b, uint64(c))
		b = binary.AppendUvarint(b, uint64(p.counts[i]))
	}
	return b
}

var errCorruptPartial = errors.New("corrupt co_share partial")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptPartial
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorruptPartial
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

// partChunk keeps each stored piece well under MySQL's default 16 MiB
// max_allowed_packet.
const partChunk = 4 << 20

// CoShareShard counts one user shard's pairs and stores them in
// mining_partials for the merge, replacing an earlier attempt's.
func CoShareShard(ctx context.Context, db *sqlx.DB, run Run, shard int, progress Progress) (Stats, error) {
	p := run.Params
	s, err := scanShard(ctx, db, run.From, run.To, p.EventType, shard, p.Shards, progress)
	if err != nil {
		return Stats{}, err
	}
	part := countPairs(s, p.MaxBasket)
	st := Stats{RowsIn: s.rows, Users: part.users, Pairs: int64(len(part.keys))}
	data := part.encode()
	tx, err := db.BeginTxx(ctx, readCommitted)
	if err != nil {
		return st, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, "DELETE FROM mining_partials WHERE run_id = ? AND shard = ?", run.ID, shard); err != nil {
		return st, err
	}
	for i := 0; i == 0 || i*partChunk < len(data); i++ {
		chunk := data[i*partChunk : min(len(data), (i+1)*partChunk)]
		if _, err := tx.ExecContext(ctx, "INSERT INTO mining_partials (run_id, shard, part, payload) VALUES (?, ?, ?, ?)",
			run.ID, shard, i, chunk); err != nil {
			return st, fmt.Errorf("storing co_share shard %d: %w", shard, err)
		}
	}
	return st, tx.Commit()
}

// merged is the sum of every shard's partial over one dictionary.
type merged struct {
	dict      map[string]int32
	items     []string
	itemUsers []int64
	users     int64
	pairs     map[uint64]uint32
}

func (m *merged) add(data []byte) error {
	r := &reader{b: data}
	if string(r.bytes(uint64(len(partialMagic)))) != partialMagic {
		return errCorruptPartial
	}
	m.users += int64(r.uvarint())
	n := r.uvarint()
	local := make([]int32, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		name := string(r.bytes(r.uvarint()))
		users := int64(r.uvarint())
		g, ok := m.dict[name]
		if !ok {
			g = int32(len(m.items))
			m.dict[name] = g
			m.items = append(m.items, name)
			m.itemUsers = append(m.itemUsers, 0)
		}
		m.itemUsers[g] += users
		local = append(local, g)
	}
	np := r.uvarint()
	for i := uint64(0); i < np && r.err == nil; i++ {
		a, c, cnt := r.uvarint(), r.uvarint(), r.uvarint()
		if a >= uint64(len(local)) || c >= uint64(len(local)) {
			return errCorruptPartial
		}
		m.pairs[pairKey(local[a], local[c])] += uint32(cnt)
	}
	if r.err == nil && len(r.b) != 0 {
		return errCorruptPartial
	}
	return r.err
}

// loadPartials reads and merges every shard's partial of the run.
func loadPartials(ctx context.Context, db sqlx.QueryerContext, run Run) (*merged, error) {
	m := &merged{dict: map[string]int32{}, pairs: map[uint64]uint32{}}
	rows, err := db.QueryxContext(ctx, "SELECT shard, part, payload FROM mining_partials WHERE run_id = ? ORDER BY shard, part", run.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen := map[int]bool{}
	var buf []byte
	cur := -1
	flush := func() error {
		if cur < 0 {
			return nil
		}
		if err := m.add(buf); err != nil {
			return fmt.Errorf("co_share shard %d: %w", cur, err)
		}
		return nil
	}
	for rows.Next() {
		var shard, part int
		var payload []byte
		if err := rows.Scan(&shard, &part, &payload); err != nil {
			return nil, err
		}
		if shard != cur {
			if err := flush(); err != nil {
				return nil, err
			}
			cur, buf = shard, buf[:0]
			seen[shard] = true
		}
		buf = append(buf, payload...)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for s := 0; s < run.Params.Shards; s++ {
		if !seen[s] {
			return nil, fmt.Errorf("co_share run %d: shard %d has no stored result", run.ID, s)
		}
	}
	return m, nil
}

// CoSharePair is one directed result row.
type CoSharePair struct {
	Item, Other string
	Support     int64
	Confidence  float64
	Lift        float64
}

// rankPairs applies min support, computes confidence and lift in both
// directions and orders each item's partners, keeping MaxPartners. It calls
// emit in (item, rank) order.
func (m *merged) rankPairs(p Params, emit func(rank int, c CoSharePair) error) error {
	type partner struct {
		other   int32
		support uint32
		lift    float64
	}
	adj := make([][]partner, len(m.items))
	n := float64(m.users)
	for k, cnt := range m.pairs {
		if int(cnt) < p.MinSupport {
			continue
		}
		a, b := splitKey(k)
		lift := float64(cnt) * n / (float64(m.itemUsers[a]) * float64(m.itemUsers[b]))
		adj[a] = append(adj[a], partner{b, cnt, lift})
		adj[b] = append(adj[b], partner{a, cnt, lift})
	}
	order := make([]int32, len(m.items))
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(i, j int) bool { return m.items[order[i]] < m.items[order[j]] })
	for _, a := range order {
		ps := adj[a]
		sort.Slice(ps, func(i, j int) bool {
			if ps[i].support != ps[j].support {
				return ps[i].support > ps[j].support
			}
			if ps[i].lift != ps[j].lift {
				return ps[i].lift > ps[j].lift
			}
			return m.items[ps[i].other] < m.items[ps[j].other]
		})
		if len(ps) > p.MaxPartners {
			ps = ps[:p.MaxPartners]
		}
		for r, q := range ps {
			if err := emit(r+1, CoSharePair{Item: m.items[a], Other: m.items[q.other], Support: int64(q.support),
				Confidence: float64(q.support) / float64(m.itemUsers[a]), Lift: q.lift}); err != nil {
				return err
			}
		}
	}
	return nil
}

// CoShareMerge sums the shards' partials and writes the run's co_shares
// rows (into its own partition, invisible until Publish).
func CoShareMerge(ctx context.Context, db *sqlx.DB, run Run, progress Progress) (Stats, error) {
	m, err := loadPartials(ctx, db, run)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Users: m.users, Pairs: int64(len(m.pairs))}
	if _, err := db.ExecContext(ctx, "DELETE FROM co_shares WHERE run_id = ?", run.ID); err != nil {
		return st, err
	}
	w := newBulk(ctx, db, "INSERT INTO co_shares (run_id, item_id, rank_no, other_item_id, support, confidence, lift) VALUES ", progress)
	runID := strconv.FormatInt(run.ID, 10)
	err = m.rankPairs(run.Params, func(rank int, c CoSharePair) error {
		return w.row(func(b []byte) []byte {
			b = append(b, '(')
			b = append(b, runID...)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, c.Item)
			b = append(b, ',')
			b = strconv.AppendInt(b, int64(rank), 10)
			b = append(b, ',')
			b = sqltext.AppendQuoted(b, c.Other)
			b = append(b, ',')
			b = strconv.AppendInt(b, c.Support, 10)
			b = append(b, ',')
			b = strconv.AppendFloat(b, c.Confidence, 'g', -1, 64)
			b = append(b, ',')
			b = strconv.AppendFloat(b, c.Lift, 'g', -1, 64)
			return append(b, ')')
		})
	})
	if err == nil {
		err = w.flush()
	}
	st.RowsOut = w.rows
	return st, err
}

// bulk writes rows with multi-row INSERT statements rendered in Go (no
// per-value driver interpolation), about batchBytes per statement.
type bulk struct {
	ctx      context.Context
	db       *sqlx.DB
	prefix   string
	buf      []byte
	pending  int
	rows     int64
	progress Progress
}

const batchBytes = 1 << 20

func newBulk(ctx context.Context, db *sqlx.DB, prefix string, progress Progress) *bulk {
	return &bulk{ctx: ctx, db: db, prefix: prefix, progress: progress}
}

func (w *bulk) row(render func([]byte) []byte) error {
	if w.pending == 0 {
		w.buf = append(w.buf[:0], w.prefix...)
	} else {
		w.buf = append(w.buf, ',')
	}
	w.buf = render(w.buf)
	w.pending++
	if len(w.buf) >= batchBytes {
		return w.flush()
	}
	return nil
}

func (w *bulk) flush() error {
	if w.pending == 0 {
		return nil
	}
	if _, err := w.db.ExecContext(w.ctx, string(w.buf)); err != nil {
		return fmt.Errorf("writing %d rows: %w", w.pending, err)
	}
	w.rows += int64(w.pending)
	w.pending = 0
	if w.progress != nil {
		w.progress("rows_written", w.rows)
	}
	return nil
}
