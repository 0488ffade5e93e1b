package mysqltest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Private is a MariaDB server of the test's own, which the test may stop
// and start (the shared server must not be touched).
type Private struct {
	t       testing.TB
	dir     string
	port    int
	mariadb string
	cmd     *exec.Cmd
	done    chan struct{}
}

func lookMariadbd() (string, error) {
	for _, p := range []string{"mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no mariadbd binary")
}

// StartPrivate initialises and starts a private MariaDB on a free port. It
// needs Debian's mariadb-server package (which `make test` installs when no
// server answers on 3306); without it the test fails saying so.
func StartPrivate(t testing.TB) *Private {
	t.Helper()
	bin, err := lookMariadbd()
	if err != nil {
		t.Fatalf("this test runs a private MariaDB server it can stop and start, and found no mariadbd: install it with `apt-get install -y mariadb-server` (as root)")
	}
	dir := t.TempDir()
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if os.Geteuid() == 0 {
		install.Args = append(install.Args, "--user=root")
	}
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := &Private{t: t, dir: dir, port: port, mariadb: bin}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// DSN returns a DSN for database name on the private server.
func (p *Private) DSN(name string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", "127.0.0.1:"+strconv.Itoa(p.port), name
	return cfg.FormatDSN()
}

// Start runs the server and waits until it accepts connections.
func (p *Private) Start() {
	p.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(p.dir, "data"), "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(p.port), "--socket=" + filepath.Join(p.dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(p.dir, "mysqld.pid"), "--log-error=" + filepath.Join(p.dir, "error.log"),
		"--skip-log-bin", "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=2"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	p.cmd = exec.Command(p.mariadb, args...)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting mariadbd: %v", err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
	p.t.Fatalf("private mariadbd did not start within 60 s:\n%s", log)
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30 s).
func (p *Private) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// NewDB creates and migrates a database on the private server.
func (p *Private) NewDB(t testing.TB, name string) string {
	t.Helper()
	dsn := p.DSN(name)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	migrate(ctx, t, dsn, name)
	return dsn
}
