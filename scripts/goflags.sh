# shellcheck shell=bash
# The Go build flags of execgate, in one place: the Makefile and the
# benchmark scripts read them from here (source this file).
#
# GO_TAGS
#   seccomp   libseccomp through cgo (probe notes, trap 1).
#   osusergo  pure-Go user and group lookups (os/user reads /etc/passwd and
#   netgo     /etc/group; the DNS resolver is Go's own): glibc's NSS would
#             need dlopen, which a static binary cannot use safely.
# GO_LDFLAGS_STATIC
#   A static binary (glibc, libseccomp). The binary is executed twice in
#   every sandbox run, as libcontainer's container init and as the
#   container's PID 1; a static binary skips the dynamic loader both times
#   (docs/sandbox.md, "Start cost"). A dynamically linked build still works,
#   only each run pays the loader.
GO_TAGS="seccomp,osusergo,netgo"
GO_LDFLAGS_STATIC="-linkmode=external -extldflags=-static"
