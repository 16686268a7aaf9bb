package mono

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether the TCP connection under conn has left the
// established state: Mono sent its FIN (close-wait) or a reset. A TLS
// close_notify comes with the FIN, so this holds under TLS too, and it
// reads nothing a TLS layer above might need. A connection it cannot
// inspect counts as open.
func peerClosed(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	raw.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err == nil && info.State != tcpEstablished
	})
	return closed
}

// tcpEstablished is the kernel's TCP_ESTABLISHED (include/net/tcp_states.h).
const tcpEstablished = 1
