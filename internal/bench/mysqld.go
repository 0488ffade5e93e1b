package bench

import (
	"context"
	"fmt"

	privmysqld "github.com/sluicedata/sluice/internal/mysqld"
)

// privateSettings size the private server for benchmarks: a buffer pool
// that holds the whole data set, a large redo log, the redo log written
// at commit but synced once a second, and no binary log.
var privateSettings = []string{
	"--innodb-buffer-pool-size=2G",
	"--innodb-log-file-size=1G",
	"--innodb-flush-log-at-trx-commit=2",
	"--skip-log-bin",
	"--local-infile=ON",
	"--max-connections=200",
}

// mysqld is the benchmark's private MariaDB.
type mysqld struct{ *privmysqld.Server }

// startMySQL initialises a data directory under dir and starts the server
// on a free port, waiting until it accepts connections.
func startMySQL(ctx context.Context, dir string) (*mysqld, error) {
	srv, err := privmysqld.Init(ctx, dir, privateSettings...)
	if err != nil {
		return nil, fmt.Errorf("%w; or pass --mysql-dsn to use a running server", err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	return &mysqld{srv}, nil
}

func (m *mysqld) serverDSN() string { return m.DSN("") }

func (m *mysqld) pid() int {
	if m == nil {
		return 0
	}
	return m.Pid()
}

func (m *mysqld) stop() {
	if m != nil {
		m.Stop()
	}
}
