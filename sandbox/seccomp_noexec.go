package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// noexecDenied are the syscalls a profile with NoExecWork (policy
// noexec_work) never allows, whatever its seccomp profile lists: they
// would let a command execute a file it wrote without that file living on
// a mount. memfd_create makes an anonymous file on the kernel's internal
// shmem mount, which is never noexec: execveat(fd, "", AT_EMPTY_PATH), an
// execve of /proc/self/fd/N or the dynamic loader (ld.so /proc/self/fd/N,
// which maps it PROT_EXEC) would run it. They fail with the profile's
// default action (EPERM). memfd_secret is never in a built-in profile;
// it is listed for custom ones (its memory cannot be mapped executable,
// but nothing a sandbox runs needs it).
//
// Every other way to get an executable file from written bytes ends on a
// noexec mount: the workspace and /tmp (noexec with NoExecWork), /dev (a
// noexec tmpfs; no /dev/shm), /proc, and an O_TMPFILE file, which lives on
// the mount it was opened in. Exec checks the mount of the file itself,
// also through execveat and /proc/self/fd, and mmap(PROT_EXEC) of a file on
// a noexec mount fails with EPERM, so the loader cannot map it either.
var noexecDenied = []string{"memfd_create", "memfd_secret"}

// noexecAllow returns allow without noexecDenied.
func noexecAllow(allow []string) []string {
	return slices.DeleteFunc(slices.Clone(allow), func(n string) bool { return slices.Contains(noexecDenied, n) })
}

// seccompKey is the cache key of a profile's compiled seccomp config: its
// built-in profile's name or the SHA-256 of a custom profile's content
// (never its path: the content can change at a reload), and whether it is
// noexec.
func seccompKey(name string, data []byte, noexec bool) string {
	key := name
	if name != SeccompDefault && name != SeccompStrict {
		sum := sha256.Sum256(data)
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	if noexec {
		key += "+noexec"
	}
	return key
}
