/*
 * The contract between the sandbox's PID 1 (pid1.c) and the Manager
 * (package pid1's Go side). Both sides read these names; keep them in sync
 * only here.
 */
#ifndef EXECGATE_PID1_H
#define EXECGATE_PID1_H

/* argv[0] of the shim: the fixed path at which the Manager bind-mounts the
 * running binary into every container. */
#define EG_INIT_PATH "/.execgate/init"

/* argv[1]: how the command's terminal is set up. */
#define EG_MODE_PIPE "pipe"
#define EG_MODE_TTY "tty"

/* File descriptors the Manager passes (libcontainer's ExtraFiles). */
#define EG_STATUS_FD 3 /* write end of a pipe: one status record */
#define EG_FILTER_FD 4 /* the seccomp program: struct sock_filter[] */
#define EG_ENV_FD 5    /* the command's environment: "K=V\0" entries */

/* Largest environment block PID 1 accepts (the kernel's own limit for
 * argv and environment together is a quarter of the stack limit). */
#define EG_MAX_ENV_BYTES (8 << 20)

/* Status records written to EG_STATUS_FD (all integers little-endian):
 *   'W' status:u32                 the command's wait status (5 bytes)
 *   'E' stage:u8 errno:u32         PID 1 failed at stage (6 bytes)   */
#define EG_REC_WAIT 'W'
#define EG_REC_ERROR 'E'
#define EG_REC_WAIT_LEN 5
#define EG_REC_ERROR_LEN 6

/* Where PID 1 failed. It then exits with EG_EXIT_BASE + stage. */
enum eg_stage {
	EG_STAGE_USAGE = 1,    /* argv is not: path mode -- command... */
	EG_STAGE_DUMPABLE,     /* prctl(PR_SET_DUMPABLE, 0) */
	EG_STAGE_FILTER_READ,  /* fstat/pread of EG_FILTER_FD */
	EG_STAGE_FILTER_SIZE,  /* empty, not whole instructions, or too long */
	EG_STAGE_SIGNALS,      /* sigprocmask */
	EG_STAGE_PIPE,         /* pipe2 for the child's exec report */
	EG_STAGE_FORK,         /* fork */
	EG_STAGE_SETPGID,      /* child: setpgid */
	EG_STAGE_TCSETPGRP,    /* child: tcsetpgrp (terminal runs) */
	EG_STAGE_CHILD_FILTER, /* child: loading the filter */
	EG_STAGE_EXEC,         /* child: execve of the command */
	EG_STAGE_FILTER,       /* PID 1: loading the filter */
	EG_STAGE_WAIT,         /* sigwaitinfo or waitpid */
	EG_STAGE_STATUS,       /* writing the status record */
	EG_STAGE_ENV,          /* reading EG_ENV_FD */
	EG_STAGE_COUNT
};
#define EG_EXIT_BASE 200

/* Name of a stage for messages ("?" when out of range). */
const char *eg_stage_name(int stage);

#endif
