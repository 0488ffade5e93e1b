// Package mysqltest gives tests a private, migrated MySQL database on a real
// server. It never skips: when no server answers, the test fails and says
// how to start one.
package mysqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/sluicedata/sluice/internal/store"
	"github.com/sluicedata/sluice/schemas"
)

// EnvDSN names the variable holding the server DSN for tests (no database).
const EnvDSN = "SLUICE_TEST_MYSQL_DSN"

// ServerDSN returns the DSN of the test server, without a database name.
func ServerDSN() string {
	if v := os.Getenv(EnvDSN); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// DSN returns a DSN for database name on the test server.
func DSN(t testing.TB, name string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		t.Fatalf("parsing %s=%q: %v", EnvDSN, ServerDSN(), err)
	}
	cfg.DBName = name
	return cfg.FormatDSN()
}

// New creates a fresh database named sluice_test_<random>, applies the
// migrations and today's partitions, and drops it when the test ends.
// It returns the open handle and the database's DSN.
func New(t testing.TB) (*sqlx.DB, string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sluice_test_" + hex.EncodeToString(b[:])
	dsn := DSN(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("MySQL/MariaDB is required for this test and is not reachable: %v\n"+
			"Start it with `make mysql` (installs and starts MariaDB on 127.0.0.1:3306), or set %s to a server DSN such as root@tcp(127.0.0.1:3306)/", err, EnvDSN)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + store.QuoteIdent(name))
		db.Close()
	})
	migrateDB(ctx, t, db, name)
	return db, dsn
}

func migrate(ctx context.Context, t testing.TB, dsn, name string) {
	t.Helper()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening %s: %v", name, err)
	}
	defer db.Close()
	migrateDB(ctx, t, db, name)
}

func migrateDB(ctx context.Context, t testing.TB, db *sqlx.DB, name string) {
	t.Helper()
	if _, err := schemas.Migrate(ctx, db.DB); err != nil {
		t.Fatalf("migrating %s: %v", name, err)
	}
	if _, err := store.EnsureStreamPartitions(ctx, db, time.Now(), 7); err != nil {
		t.Fatalf("creating partitions in %s: %v", name, err)
	}
}
