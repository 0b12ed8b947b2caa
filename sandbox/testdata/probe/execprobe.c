/*
 * execprobe: tries to execute a file written inside the sandbox, one way per
 * invocation (attack_exec_test.go). It prints one line: "RAN" from the
 * executed copy of itself, or "<step> <ERRNO>" for the step that was
 * refused (then it exits 1).
 *
 *   execprobe ran               the payload: prints RAN
 *   execprobe execve PATH       execve(PATH)
 *   execprobe execveat PATH     open(PATH), execveat(fd, "", AT_EMPTY_PATH)
 *   execprobe memfd-execveat    memfd_create, copy of itself, execveat(AT_EMPTY_PATH)
 *   execprobe memfd-proc        memfd_create, copy of itself, execve(/proc/self/fd/N)
 *   execprobe tmpfile DIR       open(DIR, O_TMPFILE), copy of itself, fchmod 0755,
 *                               execveat(AT_EMPTY_PATH)
 *   execprobe mmap PATH         mmap(PATH, PROT_READ|PROT_EXEC), as the dynamic
 *                               loader does: prints "mmap OK" when allowed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int refused(const char *step)
{
	const char *name = strerrorname_np(errno);
	printf("%s %s\n", step, name ? name : "EUNKNOWN");
	return 1;
}

/* copy_self writes /proc/self/exe into fd. */
static int copy_self(int fd)
{
	char buf[65536];
	ssize_t n;
	int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	if (in < 0)
		return -1;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		if (write(fd, buf, n) != n) {
			close(in);
			return -1;
		}
	}
	close(in);
	return n < 0 ? -1 : 0;
}

static char *payload[] = {"execprobe", "ran", NULL};
static char *env[] = {NULL};

static int run_fd(int fd)
{
	syscall(SYS_execveat, fd, "", payload, env, AT_EMPTY_PATH);
	return refused("execveat");
}

static int memfd(int via_proc)
{
	char path[64];
	int fd = memfd_create("payload", 0);

	if (fd < 0)
		return refused("memfd_create");
	if (copy_self(fd) < 0)
		return refused("copy");
	if (!via_proc)
		return run_fd(fd);
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	execve(path, payload, env);
	return refused("execve");
}

static int o_tmpfile(const char *dir)
{
	char path[64];
	int ro, fd = open(dir, O_TMPFILE | O_RDWR, 0755);

	if (fd < 0)
		return refused("open");
	if (copy_self(fd) < 0)
		return refused("copy");
	if (fchmod(fd, 0755) < 0)
		return refused("fchmod");
	/* A file open for writing cannot be executed (ETXTBSY): reopen it
	 * read-only, then close the writable fd. */
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY);
	if (ro < 0)
		return refused("reopen");
	close(fd);
	return run_fd(ro);
}

static int map_exec(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return refused("open");
	if (mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED)
		return refused("mmap");
	printf("mmap OK\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : "";
	int fd;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (strcmp(mode, "ran") == 0) {
		printf("RAN\n");
		return 0;
	}
	if (strcmp(mode, "execve") == 0) {
		execve(arg, payload, env);
		return refused("execve");
	}
	if (strcmp(mode, "execveat") == 0) {
		fd = open(arg, O_RDONLY);
		if (fd < 0)
			return refused("open");
		return run_fd(fd);
	}
	if (strcmp(mode, "memfd-execveat") == 0)
		return memfd(0);
	if (strcmp(mode, "memfd-proc") == 0)
		return memfd(1);
	if (strcmp(mode, "tmpfile") == 0)
		return o_tmpfile(arg);
	if (strcmp(mode, "mmap") == 0)
		return map_exec(arg);
	fprintf(stderr, "execprobe: unknown mode %s\n", mode);
	return 2;
}
