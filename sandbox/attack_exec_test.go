package sandbox

import (
	"fmt"
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

var execProbeProgram = &cProgram{name: "execprobe", src: []string{"execprobe.c"}}

// execWrittenScript writes a static binary (the exec probe) and a dynamic
// one (/bin/echo) into the workspace and /tmp, then tries every way to run
// written bytes: execve, execveat on an fd, memfd_create with execveat or
// execve of /proc/self/fd/N, an O_TMPFILE file, mmap(PROT_EXEC) and the
// dynamic loader. One "case: outcome" line each.
const execWrittenScript = `P=/opt/probe/execprobe
for d in /work /tmp; do cp $P $d/evil && cp /bin/echo $d/echo && chmod 755 $d/evil $d/echo || echo "setup: copy to $d failed"; done
if cp $P /dev/shm/evil 2>/dev/null; then echo "devshm: written"; else echo "devshm: refused"; fi
r() { label=$1; shift; printf '%s: %s\n' "$label" "$("$@" 2>&1 | head -n 1)"; }
r execve-work $P execve /work/evil
r execve-tmp $P execve /tmp/evil
r execveat-work $P execveat /work/evil
r execveat-tmp $P execveat /tmp/evil
r memfd-execveat $P memfd-execveat
r memfd-proc $P memfd-proc
r tmpfile-work $P tmpfile /work
r tmpfile-tmp $P tmpfile /tmp
r mmap-work $P mmap /work/evil
r mmap-tmp $P mmap /tmp/evil
r ldso-work /lib64/ld-linux-x86-64.so.2 /work/echo RAN
r ldso-tmp /lib64/ld-linux-x86-64.so.2 /tmp/echo RAN
rm -f /work/evil /work/echo`

// TestAttackExecWritten checks that with noexec_work nothing written in
// the sandbox can be executed: execve and execveat fail with EACCES (the
// file's mount is noexec, also through an fd or an O_TMPFILE file),
// memfd_create fails with EPERM (seccomp), mmap(PROT_EXEC) with EPERM, so
// the dynamic loader cannot map the file either, and there is no /dev/shm.
// The control profile without noexec_work runs every one of them, so the
// refusals are not artefacts of the probe.
func TestAttackExecWritten(t *testing.T) {
	s := suite(t)
	if _, err := execProbeProgram.build(); err != nil {
		t.Fatal(err)
	}
	loaderRefused := "failed to map segment from shared object"
	refused := map[string]string{
		"devshm": "refused", "execve-work": "execve EACCES", "execve-tmp": "execve EACCES",
		"execveat-work": "execveat EACCES", "execveat-tmp": "execveat EACCES",
		"memfd-execveat": "memfd_create EPERM", "memfd-proc": "memfd_create EPERM",
		"tmpfile-work": "execveat EACCES", "tmpfile-tmp": "execveat EACCES",
		"mmap-work": "mmap EPERM", "mmap-tmp": "mmap EPERM",
		"ldso-work": loaderRefused, "ldso-tmp": loaderRefused,
	}
	allowed := map[string]string{
		"devshm": "refused", "execve-work": "RAN", "execve-tmp": "RAN",
		"execveat-work": "RAN", "execveat-tmp": "RAN",
		"memfd-execveat": "RAN", "memfd-proc": "RAN",
		"tmpfile-work": "RAN", "tmpfile-tmp": "RAN",
		"mmap-work": "mmap OK", "mmap-tmp": "mmap OK",
		"ldso-work": "RAN", "ldso-tmp": "RAN",
	}
	strictAllowed := map[string]string{}
	for k, v := range allowed {
		strictAllowed[k] = v
	}
	strictAllowed["memfd-execveat"], strictAllowed["memfd-proc"] = "memfd_create EPERM", "memfd_create EPERM"
	tests := []struct {
		name    string
		seccomp string
		noexec  bool
		uid     uint32
		want    map[string]string
	}{
		{"default noexec", SeccompDefault, true, attackUID, refused},
		{"default noexec uid0", SeccompDefault, true, 0, refused},
		{"strict noexec", SeccompStrict, true, attackUID, refused},
		{"default exec (control)", SeccompDefault, false, attackUID, allowed},
		{"strict exec", SeccompStrict, false, attackUID, strictAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := runOpts{user: fmt.Sprintf("exec%d", tt.uid), profile: func(p *policy.Profile) {
				p.NoExecWork, p.Seccomp, p.UID, p.GID = tt.noexec, tt.seccomp, tt.uid, tt.uid
			}}
			out := s.sh(t, o, execWrittenScript)
			got := map[string]string{}
			for _, l := range lines(out.stdout) {
				k, v, _ := strings.Cut(l, ": ")
				got[k] = v
			}
			for k, want := range tt.want {
				if g, ok := got[k]; !ok || !strings.Contains(g, want) {
					t.Errorf("%s: got %q, want %q", k, g, want)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d outcome lines, want %d:\n%s\nstderr: %s", len(got), len(tt.want), out.stdout, out.stderr)
			}
		})
	}
}
