package devstack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// PortInUseError says which port is busy and which flag moves it.
type PortInUseError struct {
	Addr string
	What string
	Flag string
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port %s (%s) is already in use; stop whatever listens there or move it with %s", e.Addr, e.What, e.Flag)
}

// checkFree fails with a PortInUseError when addr cannot be bound.
func checkFree(addr, what, flag string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return &PortInUseError{Addr: addr, What: what, Flag: flag}
		}
		return fmt.Errorf("checking %s port %s: %w", what, addr, err)
	}
	return ln.Close()
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
