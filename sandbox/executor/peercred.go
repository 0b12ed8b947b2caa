package executor

import (
	"fmt"
	"io"
	"net"

	"golang.org/x/sys/unix"
)

// Peer is what the executor accepts on the other end of its socket.
type Peer struct {
	UID int // required uid of the front
	PID int // required pid, 0 = any process of UID
}

// check compares the peer's kernel-reported credentials with p.
func (p Peer) check(cred *unix.Ucred) error {
	if cred == nil {
		return &PeerError{WantUID: p.UID, WantPID: p.PID, CredsMissing: true}
	}
	if int(cred.Uid) != p.UID || (p.PID != 0 && int(cred.Pid) != p.PID) {
		return &PeerError{UID: int(cred.Uid), PID: int(cred.Pid), WantUID: p.UID, WantPID: p.PID}
	}
	return nil
}

// enablePassCred asks the kernel to attach the sender's credentials to
// what this socket receives (SO_PASSCRED). Set on the executor's end of a
// socketpair before the front starts, it makes the hello carry the front's
// own uid and pid, which SO_PEERCRED cannot give on a socketpair (there it
// names the process that created the pair).
func enablePassCred(conn *net.UnixConn) error {
	return sockopt(conn, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	})
}

// peerCred returns SO_PEERCRED: the credentials of the process that called
// connect (or created the socketpair).
func peerCred(conn *net.UnixConn) (*unix.Ucred, error) {
	var cred *unix.Ucred
	err := sockopt(conn, func(fd int) error {
		c, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		cred = c
		return err
	})
	return cred, err
}

func sockopt(conn *net.UnixConn, fn func(fd int) error) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	var opErr error
	if err := raw.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return fmt.Errorf("socket control: %w", err)
	}
	return opErr
}

// maxHelloFDs sizes the hello's control buffer so that file descriptors a
// hostile front attaches with SCM_RIGHTS are received, and therefore can be
// closed, rather than left to the size of the buffer.
const maxHelloFDs = 64

// readHelloCreds reads the first frame (the hello, 24 bytes) with the
// credentials the kernel attached to it, when SO_PASSCRED was on. It
// returns the bytes read and those credentials (nil when none came).
//
// A front never passes file descriptors: any that arrive with the hello
// (SCM_RIGHTS) are closed at once and the hello is refused, as is a hello
// whose control data was cut short. (After the handshake the executor reads
// with plain read(2), and the kernel discards any descriptors sent then.)
func readHelloCreds(conn *net.UnixConn) ([]byte, *unix.Ucred, error) {
	buf := make([]byte, headerSize+8)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*maxHelloFDs))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, nil, fmt.Errorf("read hello: %w", err)
	}
	cred, nfds, perr := parseHelloControl(oob[:oobn])
	switch {
	case nfds > 0:
		return nil, nil, &ProtocolError{Frame: "hello", Reason: fmt.Sprintf("%d file descriptors passed (SCM_RIGHTS); closed", nfds)}
	case flags&unix.MSG_CTRUNC != 0:
		return nil, nil, &ProtocolError{Frame: "hello", Reason: "control data truncated"}
	case perr != nil:
		return nil, nil, &ProtocolError{Frame: "hello", Reason: "bad control data: " + perr.Error()}
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("read hello: %w", io.EOF)
	}
	if n < len(buf) {
		if _, err := io.ReadFull(conn, buf[n:]); err != nil {
			return nil, nil, fmt.Errorf("read hello: %w", err)
		}
	}
	return buf, cred, nil
}

// parseHelloControl returns the credentials in a hello's control data and
// how many passed file descriptors it carried, each of which it closes.
func parseHelloControl(oob []byte) (*unix.Ucred, int, error) {
	if len(oob) == 0 {
		return nil, 0, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, 0, err
	}
	var cred *unix.Ucred
	nfds := 0
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			for _, fd := range fds {
				_ = unix.Close(fd)
			}
			nfds += len(fds)
			continue
		}
		if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			cred = c
		}
	}
	return cred, nfds, nil
}
