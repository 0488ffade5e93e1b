// Package mysqld runs a private MariaDB server in a directory of its own,
// for tests that must stop and start MySQL and for benchmarks that must know
// the server's settings. It needs Debian's mariadb-server package.
package mysqld

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

// Server is a private MariaDB: data under Dir, listening on 127.0.0.1:Port.
type Server struct {
	Dir  string
	Port int
	// Settings are extra mariadbd flags (buffer pool, redo log, ...).
	Settings []string

	bin  string
	cmd  *exec.Cmd
	done chan struct{}
}

func look(names ...string) (string, error) {
	for _, p := range names {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", errors.New("not found")
}

// Init creates the data directory under dir (root may log in over TCP
// without a password) and picks a free port. It does not start the server.
func Init(ctx context.Context, dir string, settings ...string) (*Server, error) {
	bin, err := look("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")
	if err != nil {
		return nil, errors.New("no mariadbd binary: install it with `apt-get install -y mariadb-server` (as root)")
	}
	installBin, err := look("mariadb-install-db", "/usr/bin/mariadb-install-db", "mysql_install_db", "/usr/bin/mysql_install_db")
	if err != nil {
		return nil, errors.New("no mariadb-install-db: install it with `apt-get install -y mariadb-server` (as root)")
	}
	install := exec.CommandContext(ctx, installBin, "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if os.Geteuid() == 0 {
		install.Args = append(install.Args, "--user=root")
	}
	if out, err := install.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return &Server{Dir: dir, Port: port, Settings: settings, bin: bin}, nil
}

// Start runs the server and waits (up to 90 s) until it accepts connections.
func (s *Server) Start(ctx context.Context) error {
	args := append([]string{"--no-defaults", "--datadir=" + filepath.Join(s.Dir, "data"), "--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(s.Port), "--socket=" + filepath.Join(s.Dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"), "--log-error=" + filepath.Join(s.Dir, "error.log")},
		s.Settings...)
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	s.cmd = exec.Command(s.bin, args...)
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting mariadbd: %w", err)
	}
	done := make(chan struct{})
	s.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(s.cmd)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("private mariadbd exited at start:\n%s", s.log())
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Stop()
	return fmt.Errorf("private mariadbd did not start within 90 s:\n%s", s.log())
}

func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	return string(b)
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 30 s); its data stays.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Pid is the running server's process id (0 when stopped).
func (s *Server) Pid() int {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// DSN is a DSN for root on the server and database name ("" for none).
func (s *Server) DSN(name string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.DBName = "root", "tcp", "127.0.0.1:"+strconv.Itoa(s.Port), name
	return cfg.FormatDSN()
}
