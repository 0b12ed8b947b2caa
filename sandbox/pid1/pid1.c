/*
 * The PID 1 of every sandbox container.
 *
 * libcontainer's init executes EG_INIT_PATH (a read-only bind of the
 * running execgate binary) as the container's PID 1 with
 *
 *     argv: EG_INIT_PATH MODE -- COMMAND ARGS...
 *     env:  only what libcontainer adds (HOME); the command's environment
 *           comes in EG_ENV_FD, so no variable of the user's reaches the
 *           dynamic loader of this process (LD_PRELOAD, GLIBC_TUNABLES),
 *           and none shows in /proc/1/cmdline (world-readable on the host)
 *     fds:  0-2 the command's stdio, EG_STATUS_FD, EG_FILTER_FD, EG_ENV_FD
 *
 * The constructor below runs before the Go runtime. It returns at once
 * unless argv[0] is EG_INIT_PATH and this process is PID 1 of its PID
 * namespace; then it never returns (always _exit):
 *
 *  1. PR_SET_DUMPABLE 0: the command runs as the same uid, and must not be
 *     able to open /proc/1/mem, /proc/1/fd/... or ptrace this process.
 *  2. Read the seccomp program (struct sock_filter[]) from EG_FILTER_FD
 *     and the command's environment from EG_ENV_FD.
 *  3. Block every signal, reset every disposition to the default, fork.
 *  4. Child: own process group (for a terminal also its foreground group),
 *     the original signal mask, load the filter, execve the command with
 *     fds 0-2 only (everything else is close-on-exec). A failure before
 *     the execve is reported to PID 1 over a close-on-exec pipe.
 *  5. PID 1 loads the same filter, then waits with sigwaitinfo: SIGCHLD
 *     reaps every zombie; every other signal is forwarded to the command.
 *     When the command has been reaped, its exact wait status goes to
 *     EG_STATUS_FD and PID 1 exits (the kernel then kills whatever the
 *     command left running in the namespace).
 *
 * Any failure writes an error record to EG_STATUS_FD and a line to
 * stderr, and exits with EG_EXIT_BASE + stage; the Manager turns that into
 * a start error. The command never runs without the filter.
 *
 * No stdio, no malloc (two mmaps for the environment), no parsing beyond
 * argv and splitting the environment block at its NUL bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pid1.h"

static const char *const stage_names[EG_STAGE_COUNT] = {
	[EG_STAGE_USAGE] = "usage",
	[EG_STAGE_DUMPABLE] = "prctl(PR_SET_DUMPABLE)",
	[EG_STAGE_FILTER_READ] = "read seccomp filter",
	[EG_STAGE_FILTER_SIZE] = "seccomp filter size",
	[EG_STAGE_SIGNALS] = "signal setup",
	[EG_STAGE_PIPE] = "pipe",
	[EG_STAGE_FORK] = "fork",
	[EG_STAGE_SETPGID] = "setpgid",
	[EG_STAGE_TCSETPGRP] = "tcsetpgrp",
	[EG_STAGE_CHILD_FILTER] = "load seccomp filter (command)",
	[EG_STAGE_EXEC] = "execve",
	[EG_STAGE_FILTER] = "load seccomp filter (pid 1)",
	[EG_STAGE_WAIT] = "wait",
	[EG_STAGE_STATUS] = "write status",
	[EG_STAGE_ENV] = "read environment",
};

const char *eg_stage_name(int stage)
{
	if (stage <= 0 || stage >= EG_STAGE_COUNT || stage_names[stage] == NULL)
		return "?";
	return stage_names[stage];
}

/* The program, read before fork so that both processes load the same one.
 * BPF_MAXINSNS is the kernel's limit for a classic seccomp filter. */
static struct sock_filter filter_insns[BPF_MAXINSNS];

/* write_all writes len bytes, retrying on EINTR and short writes. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* read_full reads up to len bytes until EOF; it returns the count or -1. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* append copies s into buf at *off, never past cap. */
static void append(char *buf, size_t cap, size_t *off, const char *s)
{
	while (*s != '\0' && *off < cap)
		buf[(*off)++] = *s++;
}

static void append_uint(char *buf, size_t cap, size_t *off, unsigned v)
{
	char digits[10];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && *off < cap)
		buf[(*off)++] = digits[--n];
}

/* fail reports a failure of PID 1 (record and stderr line) and exits. */
static __attribute__((noreturn)) void fail(int stage, int err)
{
	unsigned char rec[EG_REC_ERROR_LEN] = {EG_REC_ERROR, (unsigned char)stage};
	char msg[128];
	size_t off = 0;

	put_le32(rec + 2, (uint32_t)err);
	(void)write_all(EG_STATUS_FD, rec, sizeof rec);
	append(msg, sizeof msg, &off, "execgate init: ");
	append(msg, sizeof msg, &off, eg_stage_name(stage));
	append(msg, sizeof msg, &off, " failed: errno ");
	append_uint(msg, sizeof msg, &off, (unsigned)err);
	append(msg, sizeof msg - 1, &off, "\n");
	(void)write_all(STDERR_FILENO, msg, off);
	_exit(EG_EXIT_BASE + stage);
}

/* child_fail reports a failure of the child before its execve to PID 1
 * (which then fails with the same stage) and exits. */
static __attribute__((noreturn)) void child_fail(int report_fd, int stage, int err)
{
	int rep[2] = {stage, err};
	(void)write_all(report_fd, rep, sizeof rep);
	_exit(EG_EXIT_BASE + stage);
}

/* parse_args reads the mode and finds the command (absolute path). It
 * returns 0, or -1 on bad usage. */
static int parse_args(int argc, char **argv, int *tty, char ***cmd)
{
	if (argc < 4 || strcmp(argv[2], "--") != 0 || argv[3][0] != '/')
		return -1;
	if (strcmp(argv[1], EG_MODE_TTY) == 0)
		*tty = 1;
	else if (strcmp(argv[1], EG_MODE_PIPE) == 0)
		*tty = 0;
	else
		return -1;
	*cmd = argv + 3;
	return 0;
}

/* read_env maps the environment block of EG_ENV_FD (private copy) and
 * returns a NULL-terminated array of its entries. The block is empty or
 * ends with NUL; the Manager checked every entry. */
static char **read_env(void)
{
	struct stat st;
	size_t size, n = 0, i = 0;
	char *block = NULL, **env;

	if (fstat(EG_ENV_FD, &st) != 0)
		fail(EG_STAGE_ENV, errno);
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || st.st_size > EG_MAX_ENV_BYTES)
		fail(EG_STAGE_ENV, EINVAL);
	size = (size_t)st.st_size;
	if (size > 0) {
		block = mmap(NULL, size, PROT_READ, MAP_PRIVATE, EG_ENV_FD, 0);
		if (block == MAP_FAILED)
			fail(EG_STAGE_ENV, errno);
		if (block[size - 1] != '\0')
			fail(EG_STAGE_ENV, EINVAL);
		for (size_t off = 0; off < size; off++)
			n += block[off] == '\0';
	}
	env = mmap(NULL, (n + 1) * sizeof *env, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (env == MAP_FAILED)
		fail(EG_STAGE_ENV, errno);
	for (size_t off = 0; off < size; off += strlen(block + off) + 1)
		env[i++] = block + off;
	env[i] = NULL;
	(void)close(EG_ENV_FD);
	return env;
}

/* read_filter reads the whole program from EG_FILTER_FD (with pread: the
 * Manager shares one sealed memfd between runs) and closes it. */
static void read_filter(struct sock_fprog *prog)
{
	struct stat st;
	size_t want, got = 0;

	if (fstat(EG_FILTER_FD, &st) != 0)
		fail(EG_STAGE_FILTER_READ, errno);
	if (!S_ISREG(st.st_mode))
		fail(EG_STAGE_FILTER_READ, EBADF);
	if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size > (off_t)sizeof filter_insns)
		fail(EG_STAGE_FILTER_SIZE, EINVAL);
	want = (size_t)st.st_size;
	while (got < want) {
		ssize_t n = pread(EG_FILTER_FD, (char *)filter_insns + got, want - got, (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(EG_STAGE_FILTER_READ, errno);
		}
		if (n == 0)
			fail(EG_STAGE_FILTER_SIZE, EIO); /* shorter than fstat said */
		got += (size_t)n;
	}
	(void)close(EG_FILTER_FD);
	prog->len = (unsigned short)(want / sizeof(struct sock_filter));
	prog->filter = filter_insns;
}

/* reset_signals blocks every signal (saving the old mask in orig) and
 * gives every signal its default disposition: an inherited SIG_IGN for
 * SIGCHLD would make the kernel reap the command behind our back, and
 * would survive into the command. */
static void reset_signals(sigset_t *orig)
{
	sigset_t all;
	struct sigaction dfl;

	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, orig) != 0)
		fail(EG_STAGE_SIGNALS, errno);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &dfl, NULL); /* glibc's own signals: EINVAL */
	}
}

/* run_child becomes the command. */
static __attribute__((noreturn)) void run_child(int tty, char **env, char **cmd, const sigset_t *orig,
						  const struct sock_fprog *prog, int report_fd)
{
	/* Its own process group: "kill 0" in the command does not reach PID 1,
	 * and a terminal's Ctrl-C and SIGWINCH go to the command's group. All
	 * signals are still blocked, so tcsetpgrp from a background group does
	 * not stop us with SIGTTOU. */
	if (setpgid(0, 0) != 0)
		child_fail(report_fd, EG_STAGE_SETPGID, errno);
	if (tty && tcsetpgrp(STDIN_FILENO, getpid()) != 0)
		child_fail(report_fd, EG_STAGE_TCSETPGRP, errno);
	if (sigprocmask(SIG_SETMASK, orig, NULL) != 0)
		child_fail(report_fd, EG_STAGE_SIGNALS, errno);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) != 0)
		child_fail(report_fd, EG_STAGE_CHILD_FILTER, errno);
	execve(cmd[0], cmd, env);
	child_fail(report_fd, EG_STAGE_EXEC, errno);
}

/* reap waits for every exited child without blocking. It returns 1 once
 * the command (pid child) has been reaped, with its status in *status. */
static int reap(pid_t child, int *status)
{
	int done = 0;
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);
		if (p > 0) {
			if (p == child) {
				*status = st;
				done = 1;
			}
			continue;
		}
		if (p == 0 || errno == ECHILD)
			return done;
		if (errno != EINTR)
			fail(EG_STAGE_WAIT, errno);
	}
}

/* supervise forwards signals to the command and reaps zombies until the
 * command has ended; it returns the command's wait status. */
static int supervise(pid_t child)
{
	sigset_t all;
	int status = 0;

	sigfillset(&all);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			fail(EG_STAGE_WAIT, errno);
		}
		if (sig == SIGCHLD) {
			if (reap(child, &status))
				return status;
			continue;
		}
		(void)kill(child, sig); /* ESRCH: it is exiting, SIGCHLD follows */
	}
}

static __attribute__((noreturn)) void pid1_main(int argc, char **argv)
{
	int tty = 0, rep[2], msg[2], status;
	char **env = NULL, **cmd = NULL;
	struct sock_fprog prog;
	sigset_t orig;
	unsigned char rec[EG_REC_WAIT_LEN] = {EG_REC_WAIT};
	ssize_t n;
	pid_t child;

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		fail(EG_STAGE_DUMPABLE, errno);
	/* Only 0-2 may reach the command. libcontainer passes nothing but
	 * our three fds; close_range covers anything else (kernel 5.11+). */
	(void)fcntl(EG_STATUS_FD, F_SETFD, FD_CLOEXEC);
	(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	if (parse_args(argc, argv, &tty, &cmd) != 0)
		fail(EG_STAGE_USAGE, EINVAL);
	read_filter(&prog);
	env = read_env();
	reset_signals(&orig);
	if (pipe2(rep, O_CLOEXEC) != 0)
		fail(EG_STAGE_PIPE, errno);
	child = fork();
	if (child < 0)
		fail(EG_STAGE_FORK, errno);
	if (child == 0) {
		(void)close(rep[0]);
		run_child(tty, env, cmd, &orig, &prog, rep[1]);
	}
	(void)close(rep[1]);
	/* The same filter for PID 1 (after fork: a profile may not allow
	 * it). If this fails, exiting kills the command with the namespace. */
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
		fail(EG_STAGE_FILTER, errno);
	/* EOF: the execve happened. Two ints: the child's stage and errno. */
	n = read_full(rep[0], msg, sizeof msg);
	if (n < 0)
		fail(EG_STAGE_WAIT, errno);
	if (n > 0 && n < (ssize_t)sizeof msg)
		fail(EG_STAGE_WAIT, EPROTO);
	if (n == (ssize_t)sizeof msg) {
		if (msg[0] <= 0 || msg[0] >= EG_STAGE_COUNT)
			fail(EG_STAGE_WAIT, EPROTO);
		fail(msg[0], msg[1]);
	}
	(void)close(rep[0]);
	status = supervise(child);
	put_le32(rec + 1, (uint32_t)status);
	if (write_all(EG_STATUS_FD, rec, sizeof rec) != 0)
		fail(EG_STAGE_STATUS, errno);
	_exit(0);
}

/* glibc passes (argc, argv, envp) to the constructors of the executable. */
__attribute__((constructor)) static void execgate_pid1(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], EG_INIT_PATH) != 0)
		return;
	if (getpid() != 1)
		return;
	pid1_main(argc, argv);
}
