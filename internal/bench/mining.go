package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"

	"github.com/sluicedata/sluice/internal/api"
	"github.com/sluicedata/sluice/internal/mining"
	"github.com/sluicedata/sluice/internal/sqltext"
	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/schemas"
	"github.com/sluicedata/sluice/workflows"
)

// MiningResult holds the figures of the mining phase (g) and the query API
// phase (h).
type MiningResult struct {
	Events        int     `json:"mining_events"`
	Users         int     `json:"mining_users"`
	Items         int     `json:"mining_items"`
	Days          int     `json:"mining_days"`
	LoadSeconds   float64 `json:"mining_load_s"`
	TrendingS     float64 `json:"trending_s"`
	TrendingSQLS  float64 `json:"trending_sql_s"`
	RatioTrending float64 `json:"ratio_trending_sql"`
	CoShareS      float64 `json:"co_share_s"`
	RecommendS    float64 `json:"recommend_s"`
	CoShareRows   int64   `json:"co_share_rows"`
	RecommendRows int64   `json:"recommend_rows"`
	// WorkerPeakRSSMB of the `sluice worker` process running the jobs.
	WorkerPeakRSSMB float64 `json:"mining_worker_peak_rss_mb"`
	APIClients      int     `json:"api_clients"`
	APIRequests     int64   `json:"api_requests"`
	APIRate         float64 `json:"api_requests_per_s"`
	APIP50Ms        float64 `json:"api_p50_ms"`
	APIP99Ms        float64 `json:"api_p99_ms"`
}

// miningCities are the cities of the generated users, the first ones far
// more common.
var miningCities = []string{"Shanghai", "Beijing", "Guangzhou", "Shenzhen", "Chengdu", "Hangzhou", "Wuhan", "Chongqing",
	"Nanjing", "Tianjin", "Suzhou", "Xian", "Changsha", "Qingdao", "Shenyang", "Zhengzhou", "Dalian", "Dongguan", "Ningbo", "Xiamen"}

// miningGen generates the mining dataset deterministically: users uniform,
// items Zipf-popular, each user living in one city, 70 % shares, 20 %
// views, 10 % orders, spread evenly over the days.
type miningGen struct {
	users, items, days int
	first              time.Time
	rng                *rand.Rand
	zipf               *rand.Zipf
	cityZipf           *rand.Zipf
	userCity           []uint8
}

func newMiningGen(events, users, items, days int, seed int64, today time.Time) *miningGen {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	g := &miningGen{users: users, items: items, days: days, first: today.AddDate(0, 0, -(days - 1)), rng: rng,
		zipf:     rand.NewZipf(rng, 1.1, 2, uint64(items-1)),
		cityZipf: rand.NewZipf(rng, 1.2, 1, uint64(len(miningCities)-1)), userCity: make([]uint8, users)}
	for i := range g.userCity {
		g.userCity[i] = uint8(g.cityZipf.Uint64())
	}
	return g
}

func userID(i int) string { return "user-" + strconv.Itoa(i) }
func itemID(i int) string { return "rest-" + strconv.Itoa(i) }

// rowTSV appends event i as a LOAD DATA line of events.
func (g *miningGen) rowTSV(b []byte, i int, until time.Time) []byte {
	day := g.first.AddDate(0, 0, i%g.days)
	span := 24 * time.Hour
	if d := until.Sub(day); d < span {
		span = d + 1 // today: only times already past
	}
	at := day.Add(time.Duration(g.rng.Int64N(int64(span))))
	u := g.rng.IntN(g.users)
	typ := "share"
	switch r := g.rng.IntN(10); {
	case r >= 9:
		typ = "order"
	case r >= 7:
		typ = "view"
	}
	ch := [...]string{"wechat", "wechat", "qq", "app"}[g.rng.IntN(4)]
	b = append(b, day.Format(time.DateOnly)...)
	b = append(b, "\tm"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '\t')
	b = append(b, typ...)
	b = append(b, '\t')
	b = at.AppendFormat(b, "2006-01-02 15:04:05.000000")
	b = append(b, '\t')
	b = sqltext.AppendTSV(b, userID(u))
	b = append(b, '\t')
	b = append(b, itemID(int(g.zipf.Uint64()))...)
	b = append(b, '\t')
	b = append(b, ch...)
	b = append(b, '\t')
	b = append(b, miningCities[g.userCity[u]]...)
	b = append(b, "\t\\N\t0\t"...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, "\t1\t"...)
	b = at.AppendFormat(b, "2006-01-02 15:04:05.000000")
	return append(b, '\n')
}

// loadMiningEvents writes the dataset into events with LOAD DATA LOCAL,
// two connections at a time (how the rows get there is not measured).
func loadMiningEvents(ctx context.Context, db *sqlx.DB, g *miningGen, events int) error {
	const chunk = 20000
	type piece struct{ data []byte }
	work := make(chan piece, 2)
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				if _, err := store.LoadTSV(ctx, db, "events", store.EventColumns, false, p.data); err != nil {
					errc <- fmt.Errorf("loading mining events: %w", err)
					for range work {
					}
					return
				}
			}
		}()
	}
	now := time.Now().UTC()
	var err error
	for i := 0; i < events && err == nil; i += chunk {
		buf := make([]byte, 0, chunk*120)
		for j := i; j < min(events, i+chunk); j++ {
			buf = g.rowTSV(buf, j, now)
		}
		select {
		case work <- piece{buf}:
		case err = <-errc:
		}
	}
	close(work)
	wg.Wait()
	select {
	case e := <-errc:
		err = errors.Join(err, e)
	default:
	}
	return err
}

// mining runs phases (g) and (h).
func (r *runner) mining(ctx context.Context) error {
	cfg := r.cfg
	m := &r.res.MiningResult
	m.Events, m.Users, m.Items, m.Days = cfg.MiningEvents, cfg.MiningUsers, cfg.MiningItems, cfg.MiningDays
	name := r.dbName + "_mining"
	db, err := store.Open(ctx, r.dsn(name))
	if err != nil {
		return err
	}
	defer db.Close()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(cfg.MiningDays - 1))
	if _, err := schemas.Migrate(ctx, db.DB); err != nil {
		return err
	}
	for _, t := range []string{"events", "trending_daily"} {
		if _, err := store.EnsureDailyPartitions(ctx, db, t, first, today.AddDate(0, 0, 1)); err != nil {
			return err
		}
	}
	r.say("(g) mining: loading %d events (%d users, %d Zipf-popular items, %d days) into %s ...", cfg.MiningEvents, cfg.MiningUsers, cfg.MiningItems, cfg.MiningDays, name)
	t0 := time.Now()
	g := newMiningGen(cfg.MiningEvents, cfg.MiningUsers, cfg.MiningItems, cfg.MiningDays, cfg.Seed, today)
	if err := loadMiningEvents(ctx, db, g, cfg.MiningEvents); err != nil {
		return err
	}
	m.LoadSeconds = time.Since(t0).Seconds()
	var shares int64
	if err := db.GetContext(ctx, &shares, "SELECT COUNT(*) FROM events WHERE type = 'share'"); err != nil {
		return err
	}
	r.say("    loaded in %.0f s; %d share events; warming the buffer pool", m.LoadSeconds, shares)
	var n int64
	if err := db.GetContext(ctx, &n, "SELECT COUNT(*) FROM events WHERE event_date >= ? AND user_id <> ''", first.Format(time.DateOnly)); err != nil {
		return err
	}

	// The ceiling: one statement ranking every day of the window.
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_trending LIKE trending_stage"); err != nil {
		return err
	}
	t0 = time.Now()
	if _, err := db.ExecContext(ctx, "INSERT INTO bench_trending (day, city, rank_no, item_id, users, shares, run_id) SELECT *, 0 FROM ("+
		fmt.Sprintf(mining.TrendingRankSQL, "BETWEEN ? AND ?")+") AS ranked",
		first.Format(time.DateOnly), today.Format(time.DateOnly), "share", first.Format(time.DateOnly), today.Format(time.DateOnly), "share", 100); err != nil {
		return fmt.Errorf("trending as one statement: %w", err)
	}
	m.TrendingSQLS = time.Since(t0).Seconds()
	r.say("    trending as one SQL statement over %d days: %.1f s", cfg.MiningDays, m.TrendingSQLS)

	// The jobs run in a `sluice worker` process of their own, as in
	// production (the embedded server shares this process).
	tq := "sluice-mining-bench"
	w, err := startWorker(cfg.WorkerBinary, []string{"worker", "--temporal-address", r.stack.TemporalAddress, "--task-queue", tq,
		"--mysql-dsn", r.dsn(name), "--kafka-brokers", strings.Join(r.stack.Brokers, ","), "--identity", "sluice-bench-mining-worker"},
		filepath.Join(r.dir, "mining-worker.log"))
	if err != nil {
		return err
	}
	defer w.stop()
	if err := r.waitPollers(ctx, w, tq); err != nil {
		return err
	}
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go w.sampleEvery(sctx, 100*time.Millisecond)
	mine := func(in workflows.MiningInput) (workflows.MiningResult, float64, error) {
		in.FromDay, in.ToDay = first.Format(time.DateOnly), today.Format(time.DateOnly)
		start := time.Now()
		run, err := r.stack.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: tq}, workflows.MiningName, in)
		if err != nil {
			return workflows.MiningResult{}, 0, err
		}
		var res workflows.MiningResult
		err = run.Get(ctx, &res)
		if err != nil && w.exited() {
			err = fmt.Errorf("%w; the worker exited:\n%s", err, w.tail(30))
		}
		return res, time.Since(start).Seconds(), err
	}
	res, secs, err := mine(workflows.MiningInput{Jobs: []string{mining.JobTrending}})
	if err != nil {
		return fmt.Errorf("trending: %w", err)
	}
	m.TrendingS = secs
	m.RatioTrending = m.TrendingS / m.TrendingSQLS
	same, err := sameTrending(ctx, db)
	if err != nil {
		return err
	}
	if !same {
		return errors.New("trending_daily differs from the one-statement ranking")
	}
	r.say("    trending job (MiningWorkflow, %d day activities): %.1f s = %.2f x the statement; same %d rows", res.Runs[0].Pieces, secs, m.RatioTrending, res.Runs[0].Stats.RowsOut)

	res, secs, err = mine(workflows.MiningInput{Jobs: []string{mining.JobCoShare}})
	if err != nil {
		return fmt.Errorf("co_share: %w", err)
	}
	m.CoShareS, m.CoShareRows = secs, res.Runs[0].Stats.RowsOut
	r.say("    co_share job (%d user shards + merge): %.1f s; %d distinct pairs over %d users, %d rows kept (min_support 2, 100 partners per item)",
		res.Runs[0].Pieces, secs, res.Runs[0].Stats.Pairs, res.Runs[0].Stats.Users, m.CoShareRows)

	res, secs, err = mine(workflows.MiningInput{Jobs: []string{mining.JobRecommend}})
	if err != nil {
		return fmt.Errorf("recommend: %w", err)
	}
	m.RecommendS, m.RecommendRows = secs, res.Runs[0].Stats.RowsOut
	r.say("    recommend job (%d user shards): %.1f s; %d users, %d rows", res.Runs[0].Pieces, secs, res.Runs[0].Stats.Users, m.RecommendRows)
	m.WorkerPeakRSSMB = w.peak()
	r.say("    mining worker peak RSS %.0f MB", m.WorkerPeakRSSMB)
	stopSampling()
	w.stop()

	return r.apiLoad(ctx, db, g)
}

// sameTrending compares trending_daily with the statement's ranking.
func sameTrending(ctx context.Context, db *sqlx.DB) (bool, error) {
	var a, b tableSum
	q := "SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('|', day, city, rank_no, item_id, users, shares))), 0) AS s FROM "
	if err := db.GetContext(ctx, &a, q+"trending_daily"); err != nil {
		return false, err
	}
	if err := db.GetContext(ctx, &b, q+"bench_trending"); err != nil {
		return false, err
	}
	return a == b && a.Rows > 0, nil
}

// apiLoad is phase (h): the query API over the mined data, 100 clients
// each sending its next request as soon as the last one is answered.
func (r *runner) apiLoad(ctx context.Context, db *sqlx.DB, g *miningGen) error {
	cfg, m := r.cfg, &r.res.MiningResult
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.New(db, api.Options{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.APIClients, MaxConnsPerHost: cfg.APIClients}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	m.APIClients = cfg.APIClients
	r.say("(h) query API: %d clients for %d s (a third each: trending 1h/24h/7d by city, a random user's recommendations, a Zipf-popular item's also-shared)", cfg.APIClients, cfg.APISeconds)
	var (
		mu   sync.Mutex
		lats []time.Duration
		bad  atomic.Int64
		wg   sync.WaitGroup
	)
	warm := time.Now().Add(2 * time.Second)
	end := warm.Add(time.Duration(cfg.APISeconds) * time.Second)
	for c := 0; c < cfg.APIClients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			zipf := rand.NewZipf(rng, 1.1, 2, uint64(g.items-1))
			var mine []time.Duration
			for time.Now().Before(end) && ctx.Err() == nil {
				var url string
				switch rng.IntN(3) {
				case 0:
					city := ""
					if rng.IntN(2) == 0 {
						city = miningCities[rng.IntN(len(miningCities))]
					}
					url = fmt.Sprintf("%s/v1/trending?window=%s&city=%s&limit=10", base, [...]string{"1h", "24h", "7d"}[rng.IntN(3)], city)
				case 1:
					url = fmt.Sprintf("%s/v1/users/%s/recommendations?limit=10", base, userID(rng.IntN(g.users)))
				default:
					url = fmt.Sprintf("%s/v1/items/%s/also-shared?limit=10", base, itemID(int(zipf.Uint64())))
				}
				t0 := time.Now()
				resp, err := hc.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					bad.Add(1)
					continue
				}
				if t0.After(warm) {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		return fmt.Errorf("query API: %d requests failed", n)
	}
	if len(lats) == 0 {
		return errors.New("query API: no request measured")
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	m.APIRequests = int64(len(lats))
	m.APIRate = float64(len(lats)) / float64(cfg.APISeconds)
	m.APIP50Ms = ms(lats[len(lats)/2])
	m.APIP99Ms = ms(lats[len(lats)*99/100])
	r.say("    %d requests, %.0f/s, p50 %.1f ms, p99 %.1f ms", m.APIRequests, m.APIRate, m.APIP50Ms, m.APIP99Ms)
	return nil
}
