package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
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

// mysqld is a MariaDB server of the benchmark's own, in a temporary
// directory (the non-test twin of mysqltest.StartPrivate).
type mysqld struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func lookMariadbd() (string, error) {
	for _, p := range []string{"mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("no mariadbd binary: install it with `apt-get install -y mariadb-server` (as root), or pass --mysql-dsn to use a running server")
}

func lookInstallDB() (string, error) {
	for _, p := range []string{"mariadb-install-db", "/usr/bin/mariadb-install-db", "mysql_install_db", "/usr/bin/mysql_install_db"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("no mariadb-install-db: install mariadb-server, or pass --mysql-dsn to use a running server")
}

// startMySQL initialises a data directory under dir and starts the server
// on a free port, waiting until it accepts connections.
func startMySQL(ctx context.Context, dir string) (*mysqld, error) {
	bin, err := lookMariadbd()
	if err != nil {
		return nil, err
	}
	installBin, err := lookInstallDB()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	install := exec.CommandContext(ctx, installBin, "--no-defaults", "--datadir="+data,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if os.Geteuid() == 0 {
		install.Args = append(install.Args, "--user=root")
	}
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := &mysqld{dir: dir, port: port, done: make(chan struct{})}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port), "--socket=" + filepath.Join(dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"), "--log-error=" + filepath.Join(dir, "error.log")},
		privateSettings...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	m.cmd = exec.Command(bin, args...)
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting mariadbd: %w", err)
	}
	go func() { _ = m.cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("private mariadbd exited at start:\n%s", log)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return m, nil
		}
		select {
		case <-ctx.Done():
			m.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
	m.stop()
	return nil, fmt.Errorf("private mariadbd did not start within 90 s:\n%s", log)
}

// serverDSN is a DSN for root on the server, without a database.
func (m *mysqld) serverDSN() string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", "127.0.0.1:"+strconv.Itoa(m.port)
	return cfg.FormatDSN()
}

func (m *mysqld) pid() int {
	if m == nil || m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// stop shuts the server down (SIGTERM, then SIGKILL after 30 s).
func (m *mysqld) stop() {
	if m == nil || m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}
