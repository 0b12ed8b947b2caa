/*
 * cgenter: the bubblewrap leg of the sandbox benchmark (bench_compare_test.go)
 * uses this to start bwrap the way a service would: inside fresh memory and
 * pids cgroups, as an unprivileged user. It must run as root.
 *
 *   cgenter UID GID CGROUPDIR... -- PROGRAM ARGS...
 *
 * It writes its own pid into each CGROUPDIR/cgroup.procs, drops to UID/GID
 * with no supplementary groups, and executes PROGRAM. File descriptors are
 * inherited (bwrap's --seccomp FD needs that).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "cgenter: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
	_exit(127);
}

int main(int argc, char **argv)
{
	char path[4096];
	int i;

	if (argc < 5) {
		fprintf(stderr, "usage: cgenter UID GID CGROUPDIR... -- PROGRAM ARGS...\n");
		return 127;
	}
	uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
	gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
	for (i = 3; i < argc && strcmp(argv[i], "--") != 0; i++) {
		int fd;
		snprintf(path, sizeof(path), "%s/cgroup.procs", argv[i]);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("open", path);
		if (write(fd, "0\n", 2) != 2)
			die("write", path);
		close(fd);
	}
	if (i + 1 >= argc) {
		fprintf(stderr, "cgenter: no program after --\n");
		return 127;
	}
	if (setgroups(0, NULL) != 0)
		die("setgroups", NULL);
	if (setgid(gid) != 0)
		die("setgid", argv[2]);
	if (setuid(uid) != 0)
		die("setuid", argv[1]);
	execv(argv[i + 1], &argv[i + 1]);
	die("exec", argv[i + 1]);
	return 127;
}
