package schemas

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned, embedded SQL file. Files are named
// NNNN_name.sql; every statement in them must be safe to run again
// (CREATE TABLE IF NOT EXISTS, ...), because MySQL DDL is not transactional
// and a crash can leave a migration half applied.
type Migration struct {
	Version  int
	Name     string
	Checksum string
	SQL      string
}

// Statements splits the migration into single statements: a statement ends
// with a semicolon at the end of a line; lines starting with -- are comments.
func (m Migration) Statements() []string {
	var (
		out []string
		cur strings.Builder
	)
	for _, line := range strings.Split(m.SQL, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, stmt)
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q: name must be NNNN_name.sql", name)
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("migration files %q and %q share version %d", other, name, v)
		}
		seen[v] = name
		body, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %q: %w", name, err)
		}
		sum := sha256.Sum256(body)
		out = append(out, Migration{Version: v, Name: rest, Checksum: hex.EncodeToString(sum[:]), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// migrateLockName is the MySQL advisory lock that serialises migrations
// across processes.
const migrateLockName = "sluice.schema_migrations"

// ErrChecksumMismatch means an applied migration's file changed afterwards.
var ErrChecksumMismatch = errors.New("applied migration was modified")

// Migrate applies the embedded migrations that schema_migrations does not
// list yet, in order, and returns the versions it applied. It holds a MySQL
// advisory lock while it works, so two processes migrating at once apply each
// migration exactly once, and running it again is a no-op.
func Migrate(ctx context.Context, db *sql.DB) ([]int, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening migration connection: %w", err)
	}
	defer conn.Close()

	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", migrateLockName).Scan(&got); err != nil {
		return nil, fmt.Errorf("taking migration lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, fmt.Errorf("taking migration lock %q: timed out after 60s (another migration running?)", migrateLockName)
	}
	defer func() {
		// Release on a fresh context: the caller's may be done already.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, "SELECT RELEASE_LOCK(?)", migrateLockName)
	}()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT          NOT NULL PRIMARY KEY,
  name       VARCHAR(128) NOT NULL,
  checksum   CHAR(64)     NOT NULL,
  applied_at DATETIME(6)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}

	applied := map[int]string{}
	rows, err := conn.QueryContext(ctx, "SELECT version, checksum FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading schema_migrations: %w", err)
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}

	var done []int
	for _, m := range migs {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, fmt.Errorf("migration %04d_%s: %w (recorded checksum %s, file %s)", m.Version, m.Name, ErrChecksumMismatch, sum[:12], m.Checksum[:12])
			}
			continue
		}
		for i, stmt := range m.Statements() {
			if _, err := conn.ExecContext(ctx, stmt); err != nil && !alreadyApplied(err) {
				return done, fmt.Errorf("applying migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
			m.Version, m.Name, m.Checksum, time.Now().UTC()); err != nil {
			return done, fmt.Errorf("recording migration %04d_%s: %w", m.Version, m.Name, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

// alreadyApplied reports errors that mean a statement's change is already
// there (a migration that crashed after some statements is run again):
// table exists, duplicate column, duplicate key name. MySQL 8 has no ADD
// COLUMN IF NOT EXISTS, so this keeps ALTERs re-runnable on both servers.
// (Matched on the driver's "Error NNNN" text so schemas needs no driver.)
func alreadyApplied(err error) bool {
	for _, code := range []string{"Error 1050 ", "Error 1060 ", "Error 1061 "} {
		if strings.HasPrefix(err.Error(), code) {
			return true
		}
	}
	return false
}
