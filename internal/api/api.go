// Package api is Sluice's Query API: read-only JSON answers from MySQL,
// served by `sluice api` and by `sluice dev`.
//
// Endpoints (GET or HEAD; any other method gets 405):
//
//	GET /v1/trending?city=&window=1h|24h|7d&limit=
//	GET /v1/users/{id}/recommendations?limit=
//	GET /v1/items/{id}/also-shared?limit=
//	GET /healthz   (the process is up)
//	GET /readyz    (MySQL answers a ping; 503 otherwise)
//
// # Trending
//
// window is 1h (the default), 24h or 7d; limit is 1-100 (default 10); city
// is optional, and empty or absent means all cities together.
//
// window=1h is live: it sums the item_counts_minute rows of type "share" over
// the last 60 minute buckets, the current (partial) one included: minute_start
// from now-59 min (truncated to the minute) through now, so future minutes
// are left out. Items rank by shares, then item_id; "source" is "live" and
// items carry "shares" only.
//
// window=24h reads the trending_daily rows of yesterday and today (UTC days),
// window=7d those of today-6 through today, under the given city or, without
// one, under the empty city (where the mining job stores the all-cities
// ranking). Per item it sums "users" (daily distinct sharers, so a user
// sharing on two days counts twice) and "shares", and ranks by users, then
// shares, then item_id. "source" is "trending_daily"; days not mined yet
// contribute nothing.
//
//	{"window":"1h","city":"","source":"live","from":"2026-01-02T10:31:00Z","to":"2026-01-02T11:30:12Z",
//	 "items":[{"rank":1,"item_id":"r42","shares":17}]}
//
// "from" is the start of the first minute or day read, "to" the time of the
// answer (RFC 3339, UTC).
//
// # Mining results
//
// Recommendations and also-shared read the current run of a mining job. A run
// is published when its mining_runs row has status "succeeded"; the current
// run of a job is MAX(run_id) over its succeeded runs, so running or failed
// runs, newer or not, are never visible. The run is chosen in the same
// statement that reads its rows, ordered by rank_no.
//
//	{"user_id":"u1","run_id":7,"items":[{"rank":1,"item_id":"r9","score":0.8,"reason":"co_share","via":"r42"}]}
//	{"item_id":"r42","run_id":6,"items":[{"rank":1,"item_id":"r9","support":12,"confidence":0.4,"lift":3.1}]}
//
// An unknown id answers 200 with "items":[]; so does a job without a
// published run, with "run_id":null.
//
// # Errors
//
// Errors are JSON, such as {"error":"limit: must be an integer from 1 to 100, got \"abc\""}:
// 400 for a bad parameter, the message starting with its name (id, city,
// window, limit; an unknown or repeated query parameter is refused by name,
// so a typo cannot pass silently; an empty value means the default); 404 for
// an unknown path; 405 for a wrong method; 503 with Retry-After when MySQL is
// unreachable, overloaded or too slow; 500 when MySQL refuses the query. Ids
// in paths are URL-decoded and must be 1-64 characters of valid UTF-8 (send
// a "/" in an id as %2F).
//
// # Caching
//
// Answers are cached in the process, keyed by the normalised query (endpoint
// and id, or window and city; limit only slices the cached top 100), for
// Options.LiveTTL (1 s) for window=1h and Options.TTL (5 s) for the rest,
// counted from the start of the MySQL query: no answer is served older than
// that. At most one MySQL query per key runs at a time; concurrent requests
// for the key wait for it and share its answer. A hit in the second half of
// the TTL also starts a background refresh, so hot keys are replaced before
// they expire and their requests do not wait for MySQL. The live window is
// read for all cities in one query (one key), which serves every city. The
// cache holds at most Options.MaxCacheEntries keys. Answers carry
// Cache-Control: max-age with the whole seconds left (rounded up); errors
// carry no-store and are never cached.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/sluicedata/sluice/internal/api"

// Defaults of Options.
const (
	DefaultLiveTTL         = time.Second
	DefaultTTL             = 5 * time.Second
	DefaultMaxCacheEntries = 10_000
	DefaultQueryTimeout    = 5 * time.Second
)

// Limits of the limit parameter.
const (
	DefaultLimit = 10
	MaxLimit     = 100
	maxIDChars   = 64
	maxCityChars = 64
)

// Options tune the handler. Zero values take the defaults.
type Options struct {
	// LiveTTL is how long a window=1h trending answer is reused, counted
	// from the start of its query (default 1 s); a hit in its second half
	// refreshes it in the background. Negative disables caching of those
	// answers.
	LiveTTL time.Duration
	// TTL is the same for every other answer (default 5 s).
	TTL time.Duration
	// MaxCacheEntries bounds the number of cached keys (default 10,000).
	MaxCacheEntries int
	// QueryTimeout bounds one MySQL query (default 5 s).
	QueryTimeout time.Duration
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// Logger receives MySQL errors (default slog.Default()).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.LiveTTL == 0 {
		o.LiveTTL = DefaultLiveTTL
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxCacheEntries <= 0 {
		o.MaxCacheEntries = DefaultMaxCacheEntries
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = DefaultQueryTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

type handler struct {
	db    *sqlx.DB
	opts  Options
	log   *slog.Logger
	cache *cache

	durations metric.Float64Histogram
	lookups   metric.Int64Counter
}

// New returns the Query API's HTTP handler reading from db.
func New(db *sqlx.DB, opts Options) http.Handler {
	opts = opts.withDefaults()
	h := &handler{
		db:    db,
		opts:  opts,
		log:   opts.Logger,
		cache: newCache(opts.MaxCacheEntries, opts.Now),
	}
	m := otel.Meter(instrumentationName)
	var err error
	if h.durations, err = m.Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		h.log.Warn("query API: creating metric", "err", err)
	}
	if h.lookups, err = m.Int64Counter("sluice.api.cache.lookups",
		metric.WithUnit("{request}"),
		metric.WithDescription("Query API answers by cache outcome (hit, shared, miss).")); err != nil {
		h.log.Warn("query API: creating metric", "err", err)
	}
	return h
}

const (
	trendingPath     = "/v1/trending"
	usersPrefix      = "/v1/users/"
	recsSuffix       = "/recommendations"
	itemsPrefix      = "/v1/items/"
	alsoSharedSuffix = "/also-shared"
)

// ServeHTTP routes by path, then method, and records the request duration.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	path := r.URL.EscapedPath()
	var route string
	var status int
	switch {
	case path == "/healthz":
		route = path
		if status = checkMethod(w, r); status == 0 {
			status = writeJSON(w, http.StatusOK, "no-store", []byte(`{"status":"ok"}`))
		}
	case path == "/readyz":
		route = path
		if status = checkMethod(w, r); status == 0 {
			status = h.readyz(w, r)
		}
	case path == trendingPath:
		route = path
		if status = checkMethod(w, r); status == 0 {
			status = h.trending(w, r)
		}
	case strings.HasPrefix(path, usersPrefix) && strings.HasSuffix(path, recsSuffix) && len(path) >= len(usersPrefix)+len(recsSuffix):
		route = "/v1/users/{id}/recommendations"
		if status = checkMethod(w, r); status == 0 {
			status = h.recommendations(w, r, path[len(usersPrefix):len(path)-len(recsSuffix)])
		}
	case strings.HasPrefix(path, itemsPrefix) && strings.HasSuffix(path, alsoSharedSuffix) && len(path) >= len(itemsPrefix)+len(alsoSharedSuffix):
		route = "/v1/items/{id}/also-shared"
		if status = checkMethod(w, r); status == 0 {
			status = h.alsoShared(w, r, path[len(itemsPrefix):len(path)-len(alsoSharedSuffix)])
		}
	default:
		status = writeError(w, http.StatusNotFound, "not found: "+r.URL.Path)
	}
	if h.durations != nil {
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", r.Method),
			attribute.Int("http.response.status_code", status),
		}
		if route != "" {
			attrs = append(attrs, attribute.String("http.route", route))
		}
		h.durations.Record(r.Context(), time.Since(start).Seconds(), metric.WithAttributes(attrs...))
	}
}

// checkMethod answers 405 unless r is a GET or HEAD; it returns 0 when r may
// proceed.
func checkMethod(w http.ResponseWriter, r *http.Request) int {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return 0
	}
	w.Header().Set("Allow", "GET, HEAD")
	return writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use GET")
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) int {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := h.db.PingContext(ctx); err != nil {
		h.log.Warn("query API: MySQL not ready", "err", err)
		w.Header().Set("Retry-After", "1")
		return writeError(w, http.StatusServiceUnavailable, "MySQL is unavailable")
	}
	return writeJSON(w, http.StatusOK, "no-store", []byte(`{"status":"ready"}`))
}

func (h *handler) trending(w http.ResponseWriter, r *http.Request) int {
	q, err := parseQuery(r.URL.RawQuery, "city", "window", "limit")
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	city, err := parseCity(q)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	window, err := parseWindow(q)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	limit, err := parseLimit(q)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	if window == "1h" {
		return h.answer(w, r, "live", h.opts.LiveTTL, limit, func(ctx context.Context) (any, error) {
			return h.loadLive(ctx)
		}, func(v any) (*answer, error) {
			return v.(*liveSnapshot).answer(city)
		})
	}
	return h.answer(w, r, "daily\x00"+window+"\x00"+city, h.opts.TTL, limit, func(ctx context.Context) (any, error) {
		return h.loadDaily(ctx, window, city)
	}, nil)
}

func (h *handler) recommendations(w http.ResponseWriter, r *http.Request, rawID string) int {
	return h.byID(w, r, rawID, "recs", h.loadRecommendations)
}

func (h *handler) alsoShared(w http.ResponseWriter, r *http.Request, rawID string) int {
	return h.byID(w, r, rawID, "also", h.loadAlsoShared)
}

// byID answers a per-id list with only a limit parameter.
func (h *handler) byID(w http.ResponseWriter, r *http.Request, rawID, kind string, load func(context.Context, string) (*answer, error)) int {
	id, err := parseID(rawID)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	q, err := parseQuery(r.URL.RawQuery, "limit")
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	limit, err := parseLimit(q)
	if err != nil {
		return writeError(w, http.StatusBadRequest, err.Error())
	}
	return h.answer(w, r, kind+"\x00"+id, h.opts.TTL, limit, func(ctx context.Context) (any, error) {
		return load(ctx, id)
	}, nil)
}

// answer serves key from the cache, loading it (once, however many requests
// wait) when missing or expired, and writes the first limit items of the
// answer; pick turns a cached value that is not an *answer into one.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, key string, ttl time.Duration, limit int,
	load func(context.Context) (any, error), pick func(any) (*answer, error)) int {
	v, expires, outcome, err := h.cache.get(r.Context(), key, ttl, func() (any, error) {
		// The query outlives the request that started it: others may wait on
		// it, or it refreshes the cache in the background.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.opts.QueryTimeout)
		defer cancel()
		return load(ctx)
	})
	if h.lookups != nil {
		h.lookups.Add(r.Context(), 1, metric.WithAttributes(attribute.String("result", outcome)))
	}
	if err != nil {
		return h.dbError(w, r, err)
	}
	var ans *answer
	if pick != nil {
		if ans, err = pick(v); err != nil {
			h.log.Error("query API: encoding answer", "err", err)
			return writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		}
	} else {
		ans = v.(*answer)
	}
	cc := "max-age=0"
	if left := expires.Sub(h.opts.Now()); left > 0 {
		cc = "max-age=" + strconv.Itoa(int(math.Ceil(left.Seconds())))
	}
	return writeJSON(w, http.StatusOK, cc, ans.render(limit))
}

// dbError maps a failed load to 503 (MySQL unreachable, overloaded or too
// slow) or 500 (MySQL refused the query).
func (h *handler) dbError(w http.ResponseWriter, r *http.Request, err error) int {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The client went away while waiting; nobody reads the answer.
		return writeError(w, http.StatusServiceUnavailable, "request cancelled")
	}
	h.log.Warn("query API: MySQL query failed", "path", r.URL.Path, "err", err)
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1205, // lock wait timeout
			1213, // deadlock
			1317, // query interrupted
			1927, // connection killed
			1969, // max_statement_time exceeded (MariaDB)
			3024: // max_execution_time exceeded (MySQL)
		case 1146: // table does not exist
			return writeError(w, http.StatusInternalServerError, "MySQL schema is missing tables; run `sluice migrate`")
		default:
			return writeError(w, http.StatusInternalServerError, fmt.Sprintf("MySQL query failed (error %d)", me.Number))
		}
	}
	w.Header().Set("Retry-After", "1")
	if errors.Is(err, context.DeadlineExceeded) {
		return writeError(w, http.StatusServiceUnavailable, "MySQL did not answer within "+h.opts.QueryTimeout.String())
	}
	return writeError(w, http.StatusServiceUnavailable, "MySQL is unavailable")
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) int {
	b, err := jsonMarshal(errorBody{Error: msg})
	if err != nil {
		b = []byte(`{"error":"encoding error"}`)
	}
	return writeJSON(w, status, "no-store", b)
}

// writeJSON writes body (JSON, without the trailing newline) with status.
func writeJSON(w http.ResponseWriter, status int, cacheControl string, body []byte) int {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(body)+1))
	hd.Set("Cache-Control", cacheControl)
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return status
}
