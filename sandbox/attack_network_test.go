package sandbox

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestAttackNetwork opens a TCP listener on the host and tries to reach it
// from inside, with the "none" and "loopback" network profiles, on
// 127.0.0.1 and on every other IPv4 address of the host.
func TestAttackNetwork(t *testing.T) {
	s := suite(t)
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan net.Conn, 16)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	})
	addrs := []string{"127.0.0.1"}
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range ifs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				addrs = append(addrs, ipn.IP.String())
			}
		}
	}
	// Control: the probe reaches the listener from the host.
	probe, err := probeProgram.build()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(probe, "connect", "127.0.0.1", port).Output(); err != nil || strings.TrimSpace(string(out)) != "connect ok" {
		t.Fatalf("control: the probe cannot reach the listener from the host: %q %v", out, err)
	}
	(<-accepted).Close()
	for _, netw := range []policy.Network{policy.NetworkNone, policy.NetworkLoopback} {
		for _, ip := range addrs {
			t.Run(string(netw)+"/"+ip, func(t *testing.T) {
				o := runOpts{profile: func(p *policy.Profile) { p.Network = netw }}
				out := s.run(t, o, s.probePath, "connect", ip, port)
				if out.err != nil {
					t.Fatalf("run: %v", out)
				}
				if !strings.HasPrefix(out.stdout, "connect err:") && !strings.HasPrefix(out.stdout, "socket err:") {
					t.Errorf("connect to the host's %s:%s: got %q, want an error", ip, port, out.stdout)
				}
			})
		}
	}
	ln.Close()
	wg.Wait()
	close(accepted)
	for c := range accepted {
		t.Errorf("the host listener accepted a connection from %s", c.RemoteAddr())
		c.Close()
	}
}

// TestAttackAbstractSocket listens on an abstract AF_UNIX socket on the
// host (the namespace of the containerd-shim escape, CVE-2020-15257) and
// connects from inside: abstract sockets belong to the network namespace,
// so the sandbox must not reach it, with either network profile.
func TestAttackAbstractSocket(t *testing.T) {
	s := suite(t)
	name := "@" + randomName("execgate-attack-")
	ln, err := net.Listen("unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var accepted atomic.Int64
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	})
	// The probe itself reaches it from the host: the method works.
	probe, err := probeProgram.build()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(probe, "uconnect", name).Output(); err != nil || strings.TrimSpace(string(out)) != "connect ok" {
		t.Fatalf("control: the probe cannot reach the socket from the host: %q %v", out, err)
	}
	for _, netw := range []policy.Network{policy.NetworkNone, policy.NetworkLoopback} {
		t.Run(string(netw), func(t *testing.T) {
			o := runOpts{profile: func(p *policy.Profile) { p.Network = netw }}
			out := s.run(t, o, s.probePath, "uconnect", name)
			if out.err != nil || !strings.HasPrefix(out.stdout, "connect err:") {
				t.Errorf("abstract socket of the host from inside: %v", out)
			}
		})
	}
	ln.Close()
	wg.Wait()
	if n := accepted.Load(); n != 1 {
		t.Errorf("the host socket accepted %d connections, want only the control's", n)
	}
}
