/*
 * probe: a small static program that the sandbox attack tests build with
 * `gcc -static` and run INSIDE a sandbox. It makes raw system calls and
 * reports, for each one, what the sandbox's seccomp filter decided and what
 * the call really returned.
 *
 * Modes:
 *   probe syscalls MAXNR   every syscall number 0..MAXNR with harmless args
 *   probe attacks          named hostile calls with realistic arguments
 *   probe abi              foreign-ABI entry points (int 0x80, x32)
 *   probe connect IP PORT  one TCP connect (IPv4), prints "connect ok|err:<errno>"
 *   probe hog MIB          allocates and touches MIB mebibytes, 1 MiB at a time
 *   probe uconnect PATH    one AF_UNIX stream connect; a leading '@' means the
 *                          abstract namespace; prints "connect ok|err:<errno>"
 *
 * Output: one line per call, "<key> <filter> <real>", where key is the
 * syscall number (syscalls mode) or the case name, and filter/real are one
 * of: ok, err:<errno>, sig:<signo>, exit:<code>, hang, nofilter:<errno>, -.
 *
 * How the filter decision is read without trusting the kernel's answer: in a
 * forked child the probe stacks its own filter that answers SECCOMP_RET_TRACE
 * for exactly the syscall under test, then makes the call. Seccomp applies the
 * action of highest precedence across all stacked filters (KILL > TRAP >
 * ERRNO > USER_NOTIF > TRACE > ALLOW). So:
 *   - sandbox says ERRNO(e)  -> the call fails with e (never executed)
 *   - sandbox says KILL      -> the child dies of SIGSYS
 *   - sandbox says ALLOW     -> our TRACE wins; with no tracer attached the
 *                               kernel fails the call with ENOSYS, unexecuted
 * Only when that answer is ENOSYS is the call made for real (in another
 * forked child), to tell "allowed" from "blocked with ENOSYS" and to show
 * the real result; when the real call answers ENOSYS too, it is retried
 * once with all-zero arguments (futex answers ENOSYS to op -1). Every call runs in its own child with an alarm, so exit,
 * pause, rt_sigreturn and friends cannot stop the sweep.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { K_OK, K_ERR, K_SIG, K_EXIT, K_HANG, K_NOFILTER, K_NONE };

struct outcome {
	int kind;
	long val;
};

/* Shared between a parent and its forked child. */
struct shared {
	volatile int done;
	volatile long ret;
	volatile int nofilter; /* errno from installing the probe filter */
};

static struct shared *sh;

/* rawsys makes a system call without libc, so that nothing but the one
 * instruction runs between a fork-like call and the check after it. */
static inline __attribute__((always_inline)) long
rawsys(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

static int forklike(long nr)
{
	return nr == SYS_fork || nr == SYS_vfork || nr == SYS_clone || nr == 435 /* clone3 */;
}

/* install_trace_filter stacks a filter answering TRACE for nr only. */
static int install_trace_filter(long nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
		return 0;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
		return 0;
	return -errno;
}

/* int80 makes an i386-ABI system call (a foreign architecture for an
 * x86_64-only filter). */
static inline __attribute__((always_inline)) long int80(long nr, long a1)
{
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a1) : "memory");
	return ret;
}

static int abi32; /* set by the abi mode: call through int 0x80 */

static void child(long nr, const long a[6], int filtered)
{
	long me = rawsys(SYS_getpid, 0, 0, 0, 0, 0, 0);
	long ret;

	alarm(2);
	if (filtered) {
		int e = install_trace_filter(nr);
		if (e < 0) {
			sh->nofilter = -e;
			sh->done = 1;
			_exit(0);
		}
	}
	if (abi32)
		ret = int80(nr, a[0]);
	else
		ret = rawsys(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (forklike(nr) && ret == 0 && rawsys(SYS_getpid, 0, 0, 0, 0, 0, 0) != me)
		rawsys(SYS_exit, 0, 0, 0, 0, 0, 0); /* the new process: leave quietly */
	sh->ret = ret;
	sh->done = 1;
	/* One of these two is not the syscall under test. */
	rawsys(SYS_exit_group, 0, 0, 0, 0, 0, 0);
	rawsys(SYS_exit, 0, 0, 0, 0, 0, 0);
}

static struct outcome call(long nr, const long a[6], int filtered)
{
	struct outcome o = {K_NONE, 0};
	struct timespec tick = {0, 1000000};
	int status = 0, waited = 0;
	pid_t pid;

	memset((void *)sh, 0, sizeof(*sh));
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		o.kind = K_ERR;
		o.val = errno;
		return o;
	}
	if (pid == 0)
		child(nr, a, filtered);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			o.kind = K_ERR;
			o.val = errno;
			return o;
		}
		if (++waited > 3000) { /* 3 s: the child's own alarm failed */
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			o.kind = K_HANG;
			return o;
		}
		nanosleep(&tick, NULL);
	}
	if (sh->nofilter) {
		o.kind = K_NOFILTER;
		o.val = sh->nofilter;
	} else if (sh->done) {
		long r = sh->ret;
		if (r < 0 && r > -4096) {
			o.kind = K_ERR;
			o.val = -r;
		} else {
			o.kind = K_OK;
			o.val = r;
		}
	} else if (WIFSIGNALED(status)) {
		o.kind = WTERMSIG(status) == SIGALRM ? K_HANG : K_SIG;
		o.val = WTERMSIG(status);
	} else {
		o.kind = K_EXIT;
		o.val = WEXITSTATUS(status);
	}
	return o;
}

static void put(struct outcome o)
{
	switch (o.kind) {
	case K_OK: printf(" ok"); break;
	case K_ERR: printf(" err:%ld", o.val); break;
	case K_SIG: printf(" sig:%ld", o.val); break;
	case K_EXIT: printf(" exit:%ld", o.val); break;
	case K_HANG: printf(" hang"); break;
	case K_NOFILTER: printf(" nofilter:%ld", o.val); break;
	default: printf(" -"); break;
	}
}

/* probe_one prints "<key> <filter> <real>". The real call is made only
 * when the filter answer cannot tell allowed from blocked (ENOSYS), or when
 * always is set. */
static void probe_one(const char *key, long nr, const long a[6], int always)
{
	struct outcome f = call(nr, a, 1);
	struct outcome r = {K_NONE, 0};

	if (always || f.kind == K_NOFILTER || (f.kind == K_ERR && f.val == ENOSYS))
		r = call(nr, a, 0);
	/* Some calls answer ENOSYS to nonsense arguments (futex with op -1):
	 * try once more with zeros before concluding anything from ENOSYS. */
	if (!always && r.kind == K_ERR && r.val == ENOSYS) {
		static const long zero[6];
		struct outcome z = call(nr, zero, 0);
		if (!(z.kind == K_ERR && z.val == ENOSYS))
			r = z;
	}
	printf("%s", key);
	put(f);
	put(r);
	printf("\n");
}

static int sweep(long max)
{
	const long a[6] = {-1, -1, -1, -1, -1, -1};
	char key[32];

	for (long nr = 0; nr <= max; nr++) {
		snprintf(key, sizeof(key), "%ld", nr);
		probe_one(key, nr, a, 0);
	}
	return 0;
}

#include "attacks.h"

static int tcp_connect(const char *ip, const char *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
	int fd;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "probe: bad address %s\n", ip);
		return 2;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		printf("socket err:%d\n", errno);
		return 0;
	}
	alarm(5);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		printf("connect ok\n");
	else
		printf("connect err:%d\n", errno);
	close(fd);
	return 0;
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	int fd;

	if (n == 0 || n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "probe: bad socket path\n");
		return 2;
	}
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		printf("socket err:%d\n", errno);
		return 0;
	}
	if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + n) == 0)
		printf("connect ok\n");
	else
		printf("connect err:%d\n", errno);
	close(fd);
	return 0;
}

static int hog(long mib)
{
	for (long i = 0; i < mib; i++) {
		char *p = malloc(1 << 20);
		if (p == NULL) {
			printf("hog: malloc failed after %ld MiB\n", i);
			return 1;
		}
		memset(p, 0x5a, 1 << 20);
	}
	printf("hog: touched %ld MiB\n", mib);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("probe: mmap");
		return 2;
	}
	if (argc == 3 && strcmp(argv[1], "syscalls") == 0)
		return sweep(strtol(argv[2], NULL, 10));
	if (argc == 2 && strcmp(argv[1], "attacks") == 0)
		return attacks();
	if (argc == 2 && strcmp(argv[1], "abi") == 0)
		return abi();
	if (argc == 4 && strcmp(argv[1], "connect") == 0)
		return tcp_connect(argv[2], argv[3]);
	if (argc == 3 && strcmp(argv[1], "uconnect") == 0)
		return unix_connect(argv[2]);
	if (argc == 3 && strcmp(argv[1], "hog") == 0)
		return hog(strtol(argv[2], NULL, 10));
	fprintf(stderr, "usage: probe syscalls MAXNR | attacks | abi | connect IP PORT | uconnect PATH | hog MIB\n");
	return 2;
}
