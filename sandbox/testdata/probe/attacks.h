/*
 * attacks.h: the named hostile calls of "probe attacks" and the foreign-ABI
 * calls of "probe abi". Included once, by probe.c.
 *
 * Every case is made twice (see probe.c): once under the probe's TRACE
 * filter, which shows the sandbox filter's decision without executing the
 * call, and once for real, with arguments a real attacker would use.
 */
#include <linux/sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* struct clone_args as of Linux 5.5 (size 88, CLONE_ARGS_SIZE_VER2). */
struct probe_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* Enough zeroed bytes for any attr/params struct passed below. */
static char zeroes[512];

struct acase {
	const char *name;
	long nr;
	long a[6];
};

static int attacks(void)
{
	static struct probe_clone_args ca = {.exit_signal = SIGCHLD};
	static struct probe_clone_args ca_user = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
	static uint32_t perf_attr[32] = {1 /* PERF_TYPE_SOFTWARE */, 128 /* size */};
	static char c = 'x';
	const long hi = (long)0xffffffff00000000UL; /* high bits: the kernel ignores them */
	long nsfd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	long p = (long)zeroes;
	const struct acase cases[] = {
		/* namespaces: creating any would undo the sandbox's view */
		{"unshare_newuser", SYS_unshare, {CLONE_NEWUSER}},
		{"unshare_newns", SYS_unshare, {CLONE_NEWNS}},
		{"unshare_newnet", SYS_unshare, {CLONE_NEWNET}},
		{"unshare_newpid", SYS_unshare, {CLONE_NEWPID}},
		{"unshare_newcgroup", SYS_unshare, {CLONE_NEWCGROUP}},
		{"unshare_newtime", SYS_unshare, {CLONE_NEWTIME}},
		{"setns_uts", SYS_setns, {nsfd, 0}},
		{"clone_newuser", SYS_clone, {CLONE_NEWUSER | SIGCHLD}},
		{"clone_newns", SYS_clone, {CLONE_NEWNS | SIGCHLD}},
		{"clone_newnet", SYS_clone, {CLONE_NEWNET | SIGCHLD}},
		{"clone_newpid", SYS_clone, {CLONE_NEWPID | SIGCHLD}},
		{"clone3_plain", 435, {(long)&ca, sizeof(ca)}},
		{"clone3_newuser", 435, {(long)&ca_user, sizeof(ca_user)}},
		/* the mount family */
		{"mount_tmpfs", SYS_mount, {(long)"none", (long)"/tmp", (long)"tmpfs", 0, 0}},
		{"mount_remount_rw", SYS_mount, {0, (long)"/", 0, 0x20 /* MS_REMOUNT */, 0}},
		{"umount2_proc", SYS_umount2, {(long)"/proc", 2 /* MNT_DETACH */}},
		{"pivot_root", SYS_pivot_root, {(long)".", (long)"."}},
		{"chroot", SYS_chroot, {(long)"/tmp"}},
		{"fsopen", 430, {(long)"tmpfs", 0}},
		{"open_tree", 428, {-100 /* AT_FDCWD */, (long)"/", 1 /* OPEN_TREE_CLONE */}},
		{"move_mount", 429, {-1, (long)"", -100, (long)"/tmp", 4 /* F_EMPTY_PATH */}},
		{"mount_setattr", 442, {-100, (long)"/", 0, p, 32}},
		/* kernel attack surface */
		{"ptrace_traceme", SYS_ptrace, {0 /* PTRACE_TRACEME */}},
		{"ptrace_seize_parent", SYS_ptrace, {0x4206 /* PTRACE_SEIZE */, getpid()}},
		{"bpf_map_create", SYS_bpf, {0 /* BPF_MAP_CREATE */, p, 72}},
		{"keyctl_session", SYS_keyctl, {0 /* GET_KEYRING_ID */, -3 /* SESSION */, 1}},
		{"add_key", SYS_add_key, {(long)"user", (long)"x", (long)"y", 1, -3}},
		{"request_key", SYS_request_key, {(long)"user", (long)"x", 0, -3}},
		{"userfaultfd", SYS_userfaultfd, {0}},
		{"io_uring_setup", 425, {1, p}},
		{"io_uring_enter", 426, {-1, 0, 0, 0, 0, 0}},
		{"io_uring_register", 427, {-1, 0, 0, 0}},
		{"perf_event_open", SYS_perf_event_open, {(long)perf_attr, 0, -1, -1, 0}},
		{"socket_vsock", SYS_socket, {40 /* AF_VSOCK */, SOCK_STREAM, 0}},
		{"socket_alg", SYS_socket, {38 /* AF_ALG */, SOCK_SEQPACKET, 0}},
		{"open_by_handle_at", SYS_open_by_handle_at, {-100, p, 0}},
		{"kexec_load", SYS_kexec_load, {0, 0, 0, 0}},
		{"init_module", SYS_init_module, {p, 0, (long)""}},
		{"finit_module", SYS_finit_module, {0, (long)"", 0}},
		{"reboot", SYS_reboot, {0xfee1dead, 0x28121969, 0x4321fedc /* POWER_OFF */}},
		{"iopl", SYS_iopl, {3}},
		{"personality_read_implies_exec", SYS_personality, {0x0400000}},
		/* terminal injection, with and without high bits in the request */
		{"ioctl_tiocsti", SYS_ioctl, {0, TIOCSTI, (long)&c}},
		{"ioctl_tiocsti_hi", SYS_ioctl, {0, hi | TIOCSTI, (long)&c}},
		{"ioctl_tiocsti_bit32", SYS_ioctl, {0, (long)0x100000000L | TIOCSTI, (long)&c}},
		{"ioctl_tioclinux", SYS_ioctl, {0, TIOCLINUX, (long)&c}},
		{"ioctl_tioclinux_hi", SYS_ioctl, {0, hi | TIOCLINUX, (long)&c}},
		/* controls: ordinary calls that must stay allowed */
		{"control_getpid", SYS_getpid, {0}},
		{"control_clone_plain", SYS_clone, {SIGCHLD}},
		{"control_socket_unix", SYS_socket, {AF_UNIX, SOCK_STREAM, 0}},
		{"control_ioctl_fionread", SYS_ioctl, {0, FIONREAD, p}},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		probe_one(cases[i].name, cases[i].nr, cases[i].a, 1);
	return 0;
}

/* abi: system calls through entry points of other architectures. A filter
 * for the native architecture only must kill these (SIGSYS). */
static int abi(void)
{
	const long a[6] = {0};
	struct outcome o;

	abi32 = 1;
	o = call(20 /* i386 getpid */, a, 0);
	abi32 = 0;
	printf("int80_getpid -");
	put(o);
	printf("\n");

	o = call(0x40000000L | SYS_getpid, a, 0);
	printf("x32_getpid -");
	put(o);
	printf("\n");
	return 0;
}
