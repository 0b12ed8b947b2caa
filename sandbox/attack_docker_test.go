package sandbox

// dockerNoCapsAllowed names every syscall that Docker's default seccomp
// profile (moby profiles/seccomp/default.json) allows on x86_64 to a process
// holding NO capabilities: the unconditional list, the entries gated only on
// kernel >= 4.8 or on the amd64 architecture, and the entries allowed with
// argument filters (clone without namespace flags, socket except AF_VSOCK,
// personality with a handful of values). Everything gated on a capability
// (CAP_SYS_ADMIN, CAP_SYS_PTRACE, ...) is left out, and clone3 answers
// ENOSYS there. The sandbox must allow nothing outside this set; it may
// allow less. Names of other architectures (the *32, *64 and time64 forms)
// are harmless here: libseccomp does not resolve them on x86_64.
var dockerNoCapsAllowed = nameSet(
	// files and directories
	"access", "faccessat", "faccessat2", "chdir", "fchdir", "getcwd",
	"chmod", "fchmod", "fchmodat", "chown", "chown32", "fchown", "fchown32",
	"fchownat", "lchown", "lchown32", "creat", "open", "openat", "openat2",
	"close", "close_range", "dup", "dup2", "dup3", "fcntl", "fcntl64",
	"flock", "link", "linkat", "symlink", "symlinkat", "unlink", "unlinkat",
	"mkdir", "mkdirat", "mknod", "mknodat", "rmdir", "rename", "renameat",
	"renameat2", "readlink", "readlinkat", "truncate", "truncate64",
	"ftruncate", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64",
	"readahead", "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64",
	"fstatat64", "newfstatat", "statx", "statfs", "statfs64", "fstatfs",
	"fstatfs64", "getdents", "getdents64", "umask", "utime", "utimes",
	"utimensat", "utimensat_time64", "futimesat", "name_to_handle_at",
	"sync", "syncfs", "fsync", "fdatasync", "sync_file_range",
	// extended attributes
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr",
	"fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
	"lremovexattr", "fremovexattr",
	// reading and writing
	"read", "readv", "pread64", "preadv", "preadv2", "write", "writev",
	"pwrite64", "pwritev", "pwritev2", "lseek", "_llseek", "sendfile",
	"sendfile64", "copy_file_range", "splice", "tee", "vmsplice",
	"pipe", "pipe2", "ioctl",
	// polling and events
	"select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll",
	"ppoll_time64", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait",
	"epoll_pwait2", "eventfd", "eventfd2", "signalfd", "signalfd4",
	"timerfd_create", "timerfd_settime", "timerfd_settime64",
	"timerfd_gettime", "timerfd_gettime64", "inotify_init", "inotify_init1",
	"inotify_add_watch", "inotify_rm_watch", "fanotify_mark",
	// asynchronous I/O (io_uring is in Docker's list; execgate blocks it)
	"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
	"io_pgetevents", "io_pgetevents_time64", "io_uring_setup",
	"io_uring_enter", "io_uring_register",
	// memory
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise",
	"mincore", "msync", "mlock", "mlock2", "mlockall", "munlock",
	"munlockall", "membarrier", "memfd_create", "memfd_secret",
	"remap_file_pages", "pkey_alloc", "pkey_free", "pkey_mprotect",
	// processes and threads
	"execve", "execveat", "exit", "exit_group", "fork", "vfork",
	"wait4", "waitid", "waitpid", "kill", "tkill", "tgkill", "getpid",
	"getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid",
	"setsid", "set_tid_address", "set_robust_list", "get_robust_list",
	"futex", "futex_time64", "futex_waitv", "rseq", "prctl",
	"arch_prctl", "modify_ldt", "set_thread_area", "get_thread_area",
	"pidfd_open", "pidfd_send_signal", "process_mrelease",
	"restart_syscall", "seccomp", "landlock_create_ruleset",
	"landlock_add_rule", "landlock_restrict_self",
	// allowed from kernel 4.8 on (seccomp runs before ptrace there)
	"ptrace", "process_vm_readv", "process_vm_writev",
	// allowed with argument filters
	"clone", "socket", "personality",
	// credentials
	"getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32",
	"getegid", "getegid32", "getresuid", "getresuid32", "getresgid",
	"getresgid32", "getgroups", "getgroups32", "setuid", "setuid32",
	"setgid", "setgid32", "setreuid", "setreuid32", "setregid",
	"setregid32", "setresuid", "setresuid32", "setresgid", "setresgid32",
	"setfsuid", "setfsuid32", "setfsgid", "setfsgid32", "setgroups",
	"setgroups32", "capget", "capset",
	// signals
	"rt_sigaction", "rt_sigprocmask", "rt_sigpending", "rt_sigqueueinfo",
	"rt_tgsigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack",
	"sigprocmask", "sigreturn", "pause", "alarm",
	// time
	"time", "gettimeofday", "clock_gettime", "clock_gettime64",
	"clock_getres", "clock_getres_time64", "clock_nanosleep",
	"clock_nanosleep_time64", "nanosleep", "adjtimex", "clock_adjtime",
	"clock_adjtime64", "times", "getitimer", "setitimer", "timer_create",
	"timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
	"timer_settime", "timer_settime64",
	// scheduling, limits, system information
	"sched_yield", "sched_getaffinity", "sched_setaffinity",
	"sched_getattr", "sched_setattr", "sched_getparam", "sched_setparam",
	"sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
	"sched_get_priority_min", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "getpriority", "setpriority",
	"ioprio_get", "ioprio_set", "getrlimit", "ugetrlimit", "setrlimit",
	"prlimit64", "getrusage", "getrandom", "getcpu", "uname", "sysinfo",
	// sockets
	"socketpair", "socketcall", "bind", "connect", "listen", "accept",
	"accept4", "getsockname", "getpeername", "getsockopt", "setsockopt",
	"send", "sendto", "sendmsg", "sendmmsg", "recv", "recvfrom", "recvmsg",
	"recvmmsg", "recvmmsg_time64", "shutdown",
	// System V and POSIX IPC
	"ipc", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
	"semtimedop", "semtimedop_time64", "semctl", "shmget", "shmat", "shmdt",
	"shmctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedsend_time64",
	"mq_timedreceive", "mq_timedreceive_time64", "mq_notify",
	"mq_getsetattr",
)

// kernelPassthrough are syscall numbers that the running kernel exempts
// from seccomp altogether: uretprobe (335, Linux 6.11+) and uprobe (336,
// Linux 6.16+) only do anything when called from the uprobe trampoline;
// from anywhere else the first raises SIGILL and the second fails with
// ENXIO. libseccomp 2.5.4 has no names for them.
var kernelPassthrough = map[int]string{335: "uretprobe", 336: "uprobe"}

func nameSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
