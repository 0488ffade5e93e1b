package mysqltest

import (
	"context"
	"testing"
	"time"

	"github.com/sluicedata/sluice/internal/mysqld"
)

// Private is a MariaDB server of the test's own, which the test may stop
// and start (the shared server must not be touched).
type Private struct {
	t   testing.TB
	srv *mysqld.Server
}

// StartPrivate initialises and starts a private MariaDB on a free port. It
// needs Debian's mariadb-server package (which `make test` installs when no
// server answers on 3306); without it the test fails saying so.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	srv, err := mysqld.Init(context.Background(), t.TempDir(), "--skip-log-bin", "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=2")
	if err != nil {
		t.Fatalf("this test runs a private MariaDB server it can stop and start: %v", err)
	}
	p := &Private{t: t, srv: srv}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// DSN returns a DSN for database name on the private server.
func (p *Private) DSN(name string) string { return p.srv.DSN(name) }

// Start runs the server and waits until it accepts connections.
func (p *Private) Start() {
	p.t.Helper()
	if err := p.srv.Start(context.Background()); err != nil {
		p.t.Fatal(err)
	}
}

// Stop shuts the server down; its data stays for the next Start.
func (p *Private) Stop() { p.srv.Stop() }

// NewDB creates and migrates a database on the private server.
func (p *Private) NewDB(t testing.TB, name string) string {
	t.Helper()
	dsn := p.DSN(name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	migrate(ctx, t, dsn, name)
	return dsn
}
