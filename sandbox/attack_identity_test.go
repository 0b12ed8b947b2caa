package sandbox

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestAttackPasswdGroup: the sandbox's /etc/passwd and /etc/group are the
// generated ones (root and the sandbox user, no login shell, no host
// account), never the host's.
func TestAttackPasswdGroup(t *testing.T) {
	s := suite(t)
	out := s.sh(t, runOpts{}, "cat /etc/passwd; echo ---; cat /etc/group")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("cat passwd/group: %v", out)
	}
	passwd, group, _ := strings.Cut(out.stdout, "---\n")
	for _, l := range lines(passwd) {
		if !strings.HasSuffix(l, ":/usr/sbin/nologin") {
			t.Errorf("passwd line with a login shell: %q", l)
		}
	}
	wantPasswd := []string{"root:x:0:0:root:/root:/usr/sbin/nologin", fmt.Sprintf("sandbox:x:%d:%d:execgate sandbox:/tmp:/usr/sbin/nologin", attackUID, attackUID)}
	wantGroup := []string{"root:x:0:", fmt.Sprintf("sandbox:x:%d:", attackUID)}
	// Other profiles' users (the attack suite runs some as uid 0 or 1000)
	// may be listed too, each as a sandbox account.
	for _, w := range wantPasswd {
		if !slices.Contains(lines(passwd), w) {
			t.Errorf("passwd: no line %q in %q", w, passwd)
		}
	}
	for _, w := range wantGroup {
		if !slices.Contains(lines(group), w) {
			t.Errorf("group: no line %q in %q", w, group)
		}
	}
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(string(host)) {
		name, _, _ := strings.Cut(l, ":")
		if name != "root" && name != "" && strings.Contains(passwd, name+":") && !strings.HasPrefix(name, "sandbox") {
			t.Errorf("host account %q visible in the sandbox's passwd", name)
		}
	}
}

// TestAttackNamespacesLive: every namespace the sandbox gets (mount, PID,
// IPC, UTS, cgroup, network) differs from the host's, and the cgroup
// namespace hides the host's cgroup paths.
func TestAttackNamespacesLive(t *testing.T) {
	s := suite(t)
	kinds := []string{"mnt", "pid", "ipc", "uts", "cgroup", "net"}
	out := s.sh(t, runOpts{}, "for n in "+strings.Join(kinds, " ")+"; do readlink /proc/self/ns/$n; done; echo ---; cat /proc/self/cgroup")
	if out.err != nil || out.res.ExitCode != 0 {
		t.Fatalf("readlink ns: %v", out)
	}
	links, cgroups, _ := strings.Cut(out.stdout, "---\n")
	got := lines(links)
	if len(got) != len(kinds) {
		t.Fatalf("namespace links: got %q, want %d lines", got, len(kinds))
	}
	for i, k := range kinds {
		host, err := os.Readlink("/proc/self/ns/" + k)
		if err != nil {
			t.Fatal(err)
		}
		if got[i] == host || !strings.HasPrefix(got[i], k+":[") {
			t.Errorf("%s namespace: sandbox %q, host %q; want a new one", k, got[i], host)
		}
	}
	for _, l := range lines(cgroups) {
		if _, path, _ := strings.Cut(l[strings.IndexByte(l, ':')+1:], ":"); path != "/" {
			t.Errorf("/proc/self/cgroup line %q: want the path / (cgroup namespace)", l)
		}
	}
}

// TestAttackInterfaces: with network none and with loopback the sandbox
// has no interface but lo (whether lo is up is TestRunUmaskAndNetwork's
// and TestAttackNetwork's: connect fails, or works on 127.0.0.1 only).
func TestAttackInterfaces(t *testing.T) {
	s := suite(t)
	for _, network := range []policy.Network{policy.NetworkNone, policy.NetworkLoopback} {
		t.Run(string(network), func(t *testing.T) {
			o := runOpts{profile: func(p *policy.Profile) { p.Network = network }}
			out := s.sh(t, o, "tail -n +3 /proc/net/dev | cut -d: -f1")
			if out.err != nil || out.res.ExitCode != 0 {
				t.Fatalf("/proc/net/dev: %v", out)
			}
			var names []string
			for _, l := range lines(out.stdout) {
				names = append(names, strings.TrimSpace(l))
			}
			if len(names) != 1 || names[0] != "lo" {
				t.Errorf("interfaces: got %q, want only lo", names)
			}
		})
	}
}
