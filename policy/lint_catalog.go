package policy

import (
	"path"
	"strings"
)

// This file is the strict linter's knowledge of common programs: which ones
// run code from their arguments (interpreters, shells, wrappers, programs
// with a shell escape), and which flags of common CLIs let a caller run a
// program, load hostile configuration, reach the network or write where the
// policy did not mean it to. docs/policy.md lists the same tables.

// interpreters maps a program's base name to why allowing it outside a
// profile marked untrusted is a finding: each of these runs code or another
// program chosen by whoever controls its arguments or input.
var interpreters = map[string]string{
	// Shells.
	"sh": "a shell", "bash": "a shell", "dash": "a shell", "ash": "a shell",
	"zsh": "a shell", "ksh": "a shell", "ksh93": "a shell", "mksh": "a shell",
	"pdksh": "a shell", "csh": "a shell", "tcsh": "a shell", "fish": "a shell",
	"rbash": "a shell", "busybox": "a multi-call binary that contains a shell",
	"toybox": "a multi-call binary that contains a shell",
	// Language interpreters.
	"python": "a language interpreter", "pypy": "a language interpreter",
	"perl": "a language interpreter", "ruby": "a language interpreter",
	"irb": "a language interpreter", "node": "a language interpreter",
	"nodejs": "a language interpreter", "deno": "a language interpreter",
	"bun": "a language interpreter", "php": "a language interpreter",
	"lua": "a language interpreter", "luajit": "a language interpreter",
	"tclsh": "a language interpreter", "wish": "a language interpreter",
	"expect": "a language interpreter", "rscript": "a language interpreter",
	"r": "a language interpreter", "julia": "a language interpreter",
	"guile": "a language interpreter", "racket": "a language interpreter",
	"java": "a language runtime", "jshell": "a language interpreter",
	"ghci": "a language interpreter", "runghc": "a language interpreter",
	"ocaml": "a language interpreter", "gdb": "a debugger that runs programs",
	"awk": "an interpreter (system(), pipes)", "gawk": "an interpreter (system(), pipes)",
	"mawk": "an interpreter (system(), pipes)", "nawk": "an interpreter (system(), pipes)",
	"sed":  "GNU sed runs shell commands (the e command, the s///e flag) and writes files (w)",
	"make": "runs the recipes of any makefile it reads",
	// Wrappers: run the program named in their arguments.
	"env":   "a wrapper that runs the program named in its arguments",
	"xargs": "a wrapper that runs the program named in its arguments",
	"nice":  "a wrapper", "nohup": "a wrapper", "timeout": "a wrapper",
	"stdbuf": "a wrapper", "setsid": "a wrapper", "chroot": "a wrapper",
	"sudo": "a privilege wrapper", "su": "a privilege wrapper",
	"doas": "a privilege wrapper", "runuser": "a privilege wrapper",
	"pkexec": "a privilege wrapper", "setpriv": "a wrapper", "capsh": "a wrapper",
	"strace": "a tracer that runs programs", "ltrace": "a tracer that runs programs",
	"valgrind": "runs programs", "time": "a wrapper", "watch": "runs a shell command",
	"flock": "a wrapper", "unshare": "a wrapper", "nsenter": "a wrapper",
	"script": "runs a shell", "parallel": "runs shell commands", "ionice": "a wrapper",
	"chrt": "a wrapper", "taskset": "a wrapper", "prlimit": "a wrapper",
	"systemd-run": "a wrapper", "bwrap": "a wrapper", "firejail": "a wrapper",
	"dbus-run-session": "a wrapper", "xvfb-run": "a wrapper", "sg": "a wrapper",
	"ld.so": "the dynamic loader runs any binary",
	// Programs with a shell escape or a command-running feature.
	"vi": "an editor with a shell escape (:!)", "vim": "an editor with a shell escape (:!)",
	"nvim": "an editor with a shell escape (:!)", "view": "an editor with a shell escape (:!)",
	"ex": "an editor with a shell escape (:!)", "rvim": "an editor", "emacs": "an editor that runs Lisp and shells",
	"nano": "an editor that runs commands (^T)", "ed": "an editor with a shell escape (!)",
	"less": "a pager with a shell escape (!) and LESSOPEN", "more": "a pager with a shell escape (!)",
	"most": "a pager with a shell escape", "pg": "a pager with a shell escape",
	"man": "runs a pager and formatters", "tmux": "a terminal multiplexer that runs shells",
	"screen": "a terminal multiplexer that runs shells",
}

// dangerousFlag is one flag the linter wants in a command's deny list.
type dangerousFlag struct {
	Flag string // as the program spells it
	Why  string
}

// dangerousFlags maps a common CLI's base name to its known-dangerous flags.
// A command that runs one of these programs outside an untrusted profile
// must deny every listed flag, even if its allowlist does not name it: the
// deny list holds when a later edit widens the allowlist or a prefix match
// reaches further than its author meant.
var dangerousFlags = map[string][]dangerousFlag{
	"git": {
		{"-c", "sets configuration that runs programs (core.pager, core.sshCommand, alias.*)"},
		{"--config-env", "sets configuration from the environment"},
		{"--exec-path", "chooses where git finds the programs it runs"},
		{"--git-dir", "points git at a repository whose configuration runs programs (core.fsmonitor)"},
		{"--work-tree", "points git at another tree"},
		{"--upload-pack", "names the program run for fetch and clone"},
		{"--receive-pack", "names the program run for push"},
		{"--exec", "names a program (archive, push, rebase)"},
		{"--open-files-in-pager", "git grep runs the named pager"},
		{"--ext-diff", "runs an external diff program"},
		{"--output", "writes its output to any file"},
		{"--pathspec-from-file", "reads paths from a file, past the path checks"},
	},
	"find": {
		{"-exec", "runs a program"}, {"-execdir", "runs a program"},
		{"-ok", "runs a program"}, {"-okdir", "runs a program"},
		{"-delete", "deletes files"}, {"-fprint", "writes a file"},
		{"-fprint0", "writes a file"}, {"-fprintf", "writes a file"},
		{"-fls", "writes a file"},
		{"-files0-from", "reads start points from a file, past the path checks"},
	},
	"tar": {
		{"--checkpoint-action", "runs a program (exec=)"},
		{"--to-command", "pipes every member into a program"},
		{"--use-compress-program", "runs the named compressor"},
		{"-I", "runs the named compressor"},
		{"--rsh-command", "runs the named remote shell"},
		{"--rmt-command", "runs the named rmt program"},
		{"--info-script", "runs a script at the end of each volume"},
		{"--new-volume-script", "runs a script at the end of each volume"},
		{"-F", "runs a script at the end of each volume"},
		{"--files-from", "reads member names from a file, past the path checks"},
		{"-T", "reads member names from a file, past the path checks"},
	},
	"rsync": {
		{"-e", "names the remote shell program"},
		{"--rsh", "names the remote shell program"},
		{"--rsync-path", "names the program run on the remote side"},
		{"--files-from", "reads file names from a file, past the path checks"},
	},
	"ssh": {
		{"-o", "sets any option, including ProxyCommand and LocalCommand, which run programs"},
		{"-F", "reads a configuration file that can run programs"},
		{"-J", "jumps through other hosts"},
		{"-L", "forwards ports"}, {"-R", "forwards ports"}, {"-D", "opens a SOCKS proxy"},
	},
	"scp": {
		{"-S", "names the program used for the connection"},
		{"-o", "sets any ssh option, including ProxyCommand"},
		{"-F", "reads a configuration file that can run programs"},
		{"-J", "jumps through other hosts"},
	},
	"sftp": {
		{"-S", "names the program used for the connection"},
		{"-o", "sets any ssh option, including ProxyCommand"},
		{"-F", "reads a configuration file that can run programs"},
	},
	"sort": {
		{"--compress-program", "runs the named compressor"},
		{"--files0-from", "reads file names from a file, past the path checks"},
	},
	"wc": {{"--files0-from", "reads file names from a file, past the path checks"}},
	"du": {{"--files0-from", "reads file names from a file, past the path checks"}},
	"zip": {
		{"-TT", "names the program that tests the archive"},
		{"--unzip-command", "names the program that tests the archive"},
	},
	"rm": {
		{"--no-preserve-root", "lets rm -r remove /"},
	},
	"chmod": {{"--no-preserve-root", "lets chmod -R change /"}},
	"chown": {{"--no-preserve-root", "lets chown -R change /"}},
	"curl": {
		{"-K", "reads options from a file"}, {"--config", "reads options from a file"},
		{"-o", "writes any file"}, {"--output", "writes any file"},
	},
	"wget": {
		{"-e", "runs wgetrc commands"}, {"--execute", "runs wgetrc commands"},
		{"-O", "writes any file"}, {"--output-document", "writes any file"},
	},
}

// dangerousSubcommands maps a CLI's base name to subcommands that run
// programs, reach the network or rewrite configuration that later runs
// programs.
var dangerousSubcommands = map[string]map[string]string{
	"git": {
		"config":        "writes configuration that later runs programs (core.pager, core.fsmonitor)",
		"submodule":     "runs commands (foreach) and fetches over the network",
		"filter-branch": "runs shell snippets",
		"bisect":        "runs a program (bisect run)",
		"rebase":        "runs commands (--exec) and an editor",
		"difftool":      "runs a diff program",
		"mergetool":     "runs a merge program",
		"daemon":        "serves repositories over the network",
		"instaweb":      "starts a web server and a browser",
		"web--browse":   "starts a browser",
		"credential":    "runs credential helpers",
		"send-email":    "sends mail over the network",
		"clone":         "reaches the network; ext:: remotes run programs",
		"fetch":         "reaches the network; ext:: remotes run programs",
		"pull":          "reaches the network; ext:: remotes run programs",
		"push":          "reaches the network; ext:: remotes run programs",
		"ls-remote":     "reaches the network; ext:: remotes run programs",
		"remote":        "configures remotes (ext:: runs programs)",
		"archive":       "runs a program with --remote --exec",
		"svn":           "runs Perl and reaches the network",
		"cvsimport":     "runs cvs",
		"archimport":    "runs arch tools",
		"p4":            "runs p4",
	},
}

// programName reduces a binary path or command name to the base name the
// catalog is keyed by: "/usr/bin/python3.11" -> "python", "vim.basic" ->
// "vim", "Rscript" -> "rscript".
func programName(p string) string {
	n := strings.ToLower(path.Base(p))
	for _, suffix := range []string{".basic", ".tiny", ".nox", ".gtk3", ".gtk", ".athena"} {
		n = strings.TrimSuffix(n, suffix)
	}
	if _, ok := interpreters[n]; ok {
		return n
	}
	if _, ok := dangerousFlags[n]; ok {
		return n
	}
	// Versioned interpreters: python3, python3.11, perl5.36, lua5.4, pypy3.
	trimmed := strings.TrimRight(n, "0123456789.")
	if trimmed != "" && trimmed != n {
		if _, ok := interpreters[trimmed]; ok {
			return trimmed
		}
	}
	if strings.HasPrefix(n, "ld-linux") || strings.HasPrefix(n, "ld-musl") {
		return "ld.so"
	}
	return n
}
