package sandbox

// defaultAllow is the "default" seccomp profile: the syscalls an ordinary
// unprivileged program needs. It is a subset of Docker's default profile for
// a process without capabilities (the attack suite checks that), minus
// ptrace and process_vm_*, the clock/time setters, name_to_handle_at and
// io_uring. Some of these syscalls additionally get argument filters (see
// argFiltered in seccomp.go): clone (no namespace flags), socket and
// socketpair (address families), ioctl (no TIOCSTI/TIOCLINUX) and
// personality (the harmless values only). clone3 always answers ENOSYS.
// Names that do not exist on the native architecture are ignored.
var defaultAllow = []string{
	// files and directories
	"access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range",
	"creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64",
	"fallocate", "fchdir", "fchmod", "fchmodat", "fchown", "fchownat", "fcntl",
	"fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr", "fsetxattr",
	"fstat", "fstatfs", "fsync", "ftruncate", "futimesat", "getcwd", "getdents",
	"getdents64", "getxattr", "inotify_add_watch", "inotify_init",
	"inotify_init1", "inotify_rm_watch", "lchown", "lgetxattr", "link",
	"linkat", "listxattr", "llistxattr", "lremovexattr", "lseek", "lsetxattr",
	"lstat", "mkdir", "mkdirat", "mknod", "mknodat", "newfstatat", "open",
	"openat", "openat2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev",
	"pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
	"removexattr", "rename", "renameat", "renameat2", "rmdir", "sendfile",
	"setxattr", "splice", "stat", "statfs", "statx", "symlink", "symlinkat",
	"sync", "sync_file_range", "syncfs", "tee", "truncate", "umask", "unlink",
	"unlinkat", "utime", "utimensat", "utimes", "vmsplice", "write", "writev",
	// memory
	"brk", "madvise", "membarrier", "memfd_create", "mincore", "mlock",
	"mlock2", "mlockall", "mmap", "mprotect", "mremap", "msync", "munlock",
	"munlockall", "munmap", "pkey_alloc", "pkey_free", "pkey_mprotect",
	"remap_file_pages",
	// processes, threads, signals
	"arch_prctl", "capget", "capset", "clone", "clone3", "execve", "execveat",
	"exit", "exit_group", "fork", "get_robust_list", "get_thread_area",
	"getcpu", "getegid", "geteuid", "getgid", "getgroups", "getpgid",
	"getpgrp", "getpid", "getppid", "getpriority", "getresgid", "getresuid",
	"getrlimit", "getrusage", "getsid", "gettid", "getuid", "ioprio_get",
	"ioprio_set", "kill", "modify_ldt", "pause", "personality", "pidfd_open",
	"pidfd_send_signal", "prctl", "prlimit64", "restart_syscall", "rseq",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
	"rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
	"sched_getattr", "sched_getparam", "sched_getscheduler",
	"sched_rr_get_interval", "sched_setaffinity", "sched_setattr",
	"sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
	"set_robust_list", "set_thread_area", "set_tid_address", "setfsgid",
	"setfsuid", "setgid", "setgroups", "setitimer", "getitimer", "setpgid",
	"setpriority", "setregid", "setresgid", "setresuid", "setreuid",
	"setrlimit", "setsid", "setuid", "sigaltstack", "tgkill", "tkill",
	"vfork", "wait4", "waitid",
	// time
	"alarm", "clock_getres", "clock_gettime", "clock_nanosleep",
	"gettimeofday", "nanosleep", "time", "timer_create", "timer_delete",
	"timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create",
	"timerfd_gettime", "timerfd_settime", "times",
	// waiting and events
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "futex",
	"futex_waitv", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents",
	"io_setup", "io_submit", "pipe", "pipe2", "poll", "ppoll", "pselect6",
	"select", "signalfd", "signalfd4",
	// System V IPC and message queues (private: new IPC namespace)
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedsend", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
	"semctl", "semget", "semop", "semtimedop", "shmat", "shmctl", "shmdt",
	"shmget",
	// system information
	"getrandom", "sysinfo", "uname", "ioctl",
	// sockets (families filtered; the network namespace has no route out)
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname",
	"getsockopt", "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg",
	"sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketpair",
	// sandboxing a process further is harmless
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
}
