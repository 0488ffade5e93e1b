package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/sluicedata/sluice/schemas"
)

// Item is one payload to send and what the generator knows about it.
// Payload may be shared with earlier or later duplicates: do not modify it.
type Item struct {
	Payload   []byte // the bytes sent: a JSON object, or garbage for some bad items
	Key       string // Kafka key: item_id else user_id; a stable string for bad items
	EventID   string // event_id carried by the payload, "" for none
	Type      string // event type the payload was built from
	Valid     bool   // schemas.DecodeEvent accepts Payload
	Duplicate bool   // a byte-identical re-send of an earlier valid item
	Decodable bool   // Payload is JSON (false for garbage)
}

const (
	localItemRatio = 0.85 // share of picks among restaurants in the user's home city
	recentPool     = 4096 // recent valid originals that duplicates are drawn from
	zipfS, zipfV   = 1.1, 1
)

// chinaZone is the offset the app stamps occurred_at with.
var chinaZone = time.FixedZone("CST", 8*3600)

var dishes = []string{"小笼包", "麻婆豆腐", "北京烤鸭", "宫保鸡丁", "回锅肉", "热干面", "肉夹馍", "煲仔饭", "重庆火锅", "生煎包", "酸菜鱼", "肠粉"}

// Generator produces a deterministic stream of Items for a Seed (apart from
// RunID and the clock). It is not safe for concurrent use.
type Generator struct {
	cfg   Config
	rng   *rand.Rand
	seq   uint64
	users []int // user -> home city

	itemCity   []int   // item -> city
	cityItems  [][]int // city -> its items, most popular first
	cityZipf   []*rand.Zipf
	items      []int // all items, most popular first
	globalZipf *rand.Zipf

	recent     []Item // ring of recent valid originals
	recentNext int
}

// NewGenerator validates cfg, applies its defaults and builds the user and
// restaurant population.
func NewGenerator(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults(time.Now())
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed51ce))
	g := &Generator{
		cfg:       cfg,
		rng:       rng,
		users:     make([]int, cfg.Users),
		itemCity:  make([]int, cfg.Items),
		cityItems: make([][]int, len(cfg.Cities)),
		cityZipf:  make([]*rand.Zipf, len(cfg.Cities)),
		items:     rng.Perm(cfg.Items),
	}
	for u := range g.users {
		g.users[u] = rng.IntN(len(cfg.Cities))
	}
	for i := range g.itemCity {
		g.itemCity[i] = i % len(cfg.Cities)
	}
	for _, item := range g.items {
		c := g.itemCity[item]
		g.cityItems[c] = append(g.cityItems[c], item)
	}
	g.globalZipf = rand.NewZipf(rng, zipfS, zipfV, uint64(cfg.Items-1))
	for c, items := range g.cityItems {
		if len(items) > 0 {
			g.cityZipf[c] = rand.NewZipf(rng, zipfS, zipfV, uint64(len(items)-1))
		}
	}
	return g, nil
}

// Config returns the configuration in use, defaults applied.
func (g *Generator) Config() Config {
	return g.cfg
}

// Next returns the next item; occurred_at lies in [now-Spread, now].
func (g *Generator) Next(now time.Time) Item {
	r := g.rng.Float64()
	switch {
	case r < g.cfg.DuplicateRatio:
		if len(g.recent) > 0 {
			it := g.recent[g.rng.IntN(len(g.recent))]
			it.Duplicate = true
			return it
		}
	case r < g.cfg.DuplicateRatio+g.cfg.BadRatio:
		return g.bad(now)
	}
	it := g.valid(now)
	if len(g.recent) < recentPool {
		g.recent = append(g.recent, it)
	} else {
		g.recent[g.recentNext] = it
		g.recentNext = (g.recentNext + 1) % recentPool
	}
	return it
}

// event builds a fresh valid event with the next sequence number.
func (g *Generator) event(now time.Time) schemas.Event {
	id := g.cfg.RunID + "-" + strconv.FormatUint(g.seq, 10)
	g.seq++
	user := g.rng.IntN(g.cfg.Users)
	item := g.pickItem(user)
	typ := g.pickType()
	return schemas.Event{
		EventID:    id,
		Type:       typ,
		OccurredAt: g.occurredAt(now),
		UserID:     fmt.Sprintf("u%06d", user),
		ItemID:     fmt.Sprintf("r%05d", item),
		Channel:    g.pickChannel(),
		City:       g.cfg.Cities[g.itemCity[item]],
		Attrs:      g.attrs(typ),
	}
}

func (g *Generator) valid(now time.Time) Item {
	ev := g.event(now)
	return Item{Payload: mustMarshal(ev), Key: ev.PartitionKey(), EventID: ev.EventID, Type: ev.Type, Valid: true, Decodable: true}
}

// pickItem draws a restaurant: usually a popular one in the user's home
// city, sometimes a popular one anywhere.
func (g *Generator) pickItem(user int) int {
	city := g.users[user]
	if z := g.cityZipf[city]; z != nil && g.rng.Float64() < localItemRatio {
		return g.cityItems[city][z.Uint64()]
	}
	return g.items[g.globalZipf.Uint64()]
}

// pickType draws share with ShareRatio, and view and order 3:1 otherwise.
func (g *Generator) pickType() string {
	share := g.cfg.ShareRatio
	switch r := g.rng.Float64(); {
	case r < share:
		return "share"
	case r < share+(1-share)*0.75:
		return "view"
	}
	return "order"
}

// pickChannel draws wechat, qq and app 50:35:15.
func (g *Generator) pickChannel() string {
	switch r := g.rng.Float64(); {
	case r < 0.50:
		return "wechat"
	case r < 0.85:
		return "qq"
	}
	return "app"
}

// occurredAt draws a millisecond time in [now-Spread, now], in China time.
func (g *Generator) occurredAt(now time.Time) time.Time {
	var back time.Duration
	if g.cfg.Spread > 0 {
		back = time.Duration(g.rng.Int64N(int64(g.cfg.Spread) + 1))
	}
	return now.Add(-back).Truncate(time.Millisecond).In(chinaZone)
}

type attrs struct {
	Dish   string `json:"dish,omitempty"`
	Price  int    `json:"price,omitempty"`
	Qty    int    `json:"qty,omitempty"`
	Target string `json:"target,omitempty"`
	Source string `json:"source,omitempty"`
}

// attrs returns type-specific attributes, or nil for none.
func (g *Generator) attrs(typ string) json.RawMessage {
	var a attrs
	switch typ {
	case "share":
		if g.rng.Float64() < 0.5 {
			return nil
		}
		a.Dish = dishes[g.rng.IntN(len(dishes))]
		a.Target = [...]string{"chat", "group", "moments"}[g.rng.IntN(3)]
	case "view":
		if g.rng.Float64() < 0.7 {
			return nil
		}
		a.Source = [...]string{"feed", "search", "share_link"}[g.rng.IntN(3)]
	case "order":
		a.Dish = dishes[g.rng.IntN(len(dishes))]
		a.Price = 12 + g.rng.IntN(277)
		a.Qty = 1 + g.rng.IntN(4)
	}
	return mustMarshal(a)
}

// Kinds of bad items.
const (
	badMissingUser = iota
	badEventID
	badUnknownField
	badZonelessTime
	badShareNoItem
	badWrongType
	badGarbage
	numBadKinds
)

// bad returns an invalid item of a random kind.
func (g *Generator) bad(now time.Time) Item {
	ev := g.event(now)
	it := Item{Key: ev.PartitionKey(), EventID: ev.EventID, Type: ev.Type, Decodable: true}
	fields := map[string]any{
		"event_id":    ev.EventID,
		"type":        ev.Type,
		"occurred_at": ev.OccurredAt,
		"user_id":     ev.UserID,
		"item_id":     ev.ItemID,
		"channel":     ev.Channel,
		"city":        ev.City,
	}
	if ev.Attrs != nil {
		fields["attrs"] = ev.Attrs
	}
	switch g.rng.IntN(numBadKinds) {
	case badMissingUser:
		delete(fields, "user_id")
	case badEventID:
		it.EventID = g.cfg.RunID + "/" + strconv.FormatUint(g.seq-1, 10)
		fields["event_id"] = it.EventID
	case badUnknownField:
		fields["referrer"] = "moments"
	case badZonelessTime:
		fields["occurred_at"] = ev.OccurredAt.Format("2006-01-02T15:04:05.000")
	case badShareNoItem:
		it.Type = "share"
		fields["type"] = "share"
		delete(fields, "item_id")
	case badWrongType:
		if g.rng.IntN(2) == 0 {
			fields["occurred_at"] = ev.OccurredAt.UnixMilli()
		} else {
			fields["user_id"], _ = strconv.Atoi(ev.UserID[1:])
		}
	case badGarbage:
		it.EventID, it.Decodable = "", false
		it.Payload = g.garbage(ev)
		return it
	}
	it.Payload = mustMarshal(fields)
	return it
}

// garbage returns non-JSON bytes without newlines: a truncated event or a
// form-encoded one.
func (g *Generator) garbage(ev schemas.Event) []byte {
	if g.rng.IntN(2) == 0 {
		full := mustMarshal(ev)
		return full[:1+g.rng.IntN(len(full)-1)]
	}
	return []byte("event_id=" + ev.EventID + "&type=" + ev.Type + "&user_id=" + ev.UserID + "&item_id=" + ev.ItemID)
}

// mustMarshal encodes values built by the generator, which cannot fail.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("loadgen: encoding %T: %v", v, err))
	}
	return b
}
