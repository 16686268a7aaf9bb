package mono

import "golang.org/x/sys/unix"

// canInspect says inspect reads a connection's TCP state here.
const canInspect = true

// inspect notes whether the TCP connection of fd has left the established
// state: Mono sent its FIN (close-wait) or a reset. A TLS close_notify
// comes with the FIN, so this holds under TLS too, and it reads nothing a
// TLS layer above might need. A socket it cannot inspect counts as open.
func (c *watchedConn) inspect(fd uintptr) {
	info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	c.closed = err == nil && info.State != tcpEstablished
}

// tcpEstablished is the kernel's TCP_ESTABLISHED (include/net/tcp_states.h).
const tcpEstablished = 1
