package sandbox

// strictRemove is what the "strict" profile takes away from "default":
// every socket call (no network and no local sockets at all), System V IPC
// and message queues, inotify, xattr writes, mknod, asynchronous I/O,
// memory locking, scheduler changes and personality. What is left runs
// plain file-processing tools (cat, grep, sort, git log on a workspace).
var strictRemove = []string{
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname",
	"getsockopt", "listen", "recvfrom", "recvmmsg", "recvmsg", "sendmmsg",
	"sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketpair",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedsend", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
	"semctl", "semget", "semop", "semtimedop", "shmat", "shmctl", "shmdt",
	"shmget",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"fsetxattr", "lsetxattr", "setxattr", "fremovexattr", "lremovexattr",
	"removexattr", "mknod", "mknodat",
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup",
	"io_submit",
	"mlock", "mlock2", "mlockall", "munlock", "munlockall",
	"sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "setpriority", "ioprio_set", "personality",
	"modify_ldt", "remap_file_pages", "vmsplice", "memfd_create",
	"seccomp", "landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self",
}

// strictAllow is the "strict" profile's allowlist.
var strictAllow = subtract(defaultAllow, strictRemove)

func subtract(list, remove []string) []string {
	drop := make(map[string]bool, len(remove))
	for _, r := range remove {
		drop[r] = true
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !drop[s] {
			out = append(out, s)
		}
	}
	return out
}
