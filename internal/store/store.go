// Package store owns Sluice's MySQL side: connections, daily partitions and
// the exactly-once batch writer.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// DefaultDSN is the MySQL DSN used when none is configured.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/sluice"

// ParseDSN parses a go-sql-driver DSN and applies the session settings
// Sluice relies on: UTC times, client-side interpolation (one round trip per
// statement) and strict SQL mode, so MySQL refuses bad data instead of
// truncating it.
func ParseDSN(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parsing MySQL DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("parsing MySQL DSN: no database name (want e.g. root@tcp(127.0.0.1:3306)/sluice)")
	}
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["time_zone"]; !ok {
		cfg.Params["time_zone"] = "'+00:00'"
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
	}
	if _, ok := cfg.Params["max_error_count"]; !ok {
		// LOAD DATA ... IGNORE reports each skipped duplicate as a warning;
		// the batch writer reads them all to tell duplicates from data errors.
		cfg.Params["max_error_count"] = "65535"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return cfg, nil
}

// Open connects to the database named in dsn, creating the database first
// when it does not exist, and checks that the server answers.
func Open(ctx context.Context, dsn string) (*sqlx.DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if err := ensureDatabase(ctx, cfg); err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring MySQL connector: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, unreachable(cfg, err)
	}
	return sqlx.NewDb(db, "mysql"), nil
}

func ensureDatabase(ctx context.Context, cfg *mysql.Config) error {
	root := cfg.Clone()
	root.DBName = ""
	conn, err := mysql.NewConnector(root)
	if err != nil {
		return fmt.Errorf("configuring MySQL connector: %w", err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return unreachable(cfg, err)
	}
	q := "CREATE DATABASE IF NOT EXISTS " + QuoteIdent(cfg.DBName) + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("creating database %s: %w", cfg.DBName, err)
	}
	return nil
}

func unreachable(cfg *mysql.Config, err error) error {
	return fmt.Errorf("connecting to MySQL at %s (user %q): %w; start one with `make mysql` or point --mysql-dsn / SLUICE_MYSQL_DSN at a running server", cfg.Addr, cfg.User, err)
}

// QuoteIdent quotes a MySQL identifier with backticks.
func QuoteIdent(name string) string {
	out := make([]byte, 0, len(name)+2)
	out = append(out, '`')
	for i := 0; i < len(name); i++ {
		if name[i] == '`' {
			out = append(out, '`')
		}
		out = append(out, name[i])
	}
	return string(append(out, '`'))
}

// MySQL error numbers Sluice branches on.
const (
	errLockWaitTimeout = 1205
	errDeadlock        = 1213
	errDupEntry        = 1062
)

func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// IsRetryableConflict reports whether err is a deadlock or lock wait timeout,
// after which the whole transaction can simply run again.
func IsRetryableConflict(err error) bool {
	n := mysqlErrNumber(err)
	return n == errDeadlock || n == errLockWaitTimeout
}

// IsRowDataError reports whether MySQL refused a row for good because of its
// data (too long, bad value, no partition for it): retrying cannot help.
func IsRowDataError(err error) bool {
	switch mysqlErrNumber(err) {
	case 1048, // column cannot be null
		1264, // out of range
		1292, // incorrect datetime/date value
		1366, // incorrect string/integer value
		1406, // data too long
		1526, // no partition for value
		3140, // invalid JSON text (MySQL 8)
		4025: // CHECK constraint failed (MariaDB)
		return true
	}
	return false
}
