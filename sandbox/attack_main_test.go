package sandbox

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// Set when the attack suite's Manager is created (attack_helpers_test.go).
var (
	attackBase string   // temp tree: state root, workspaces
	attackCfg  *Config  // the suite's configuration
	attackMgr  *Manager // closed after the tests
)

// leftoverMarker appears in the command line of every long-lived process
// the attack tests start inside a sandbox, so the final check can find
// survivors on the host.
const leftoverMarker = "313.7"

func TestMain(m *testing.M) {
	if err := setupHelperDir(); err != nil {
		fmt.Fprintln(os.Stderr, "TestMain:", err)
		os.Exit(2)
	}
	code := m.Run()
	if attackMgr != nil {
		if err := attackMgr.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "leftover check: close manager:", err)
			code = max(code, 1)
		}
	}
	if attackCfg != nil {
		if problems := leftovers(*attackCfg); len(problems) > 0 {
			fmt.Fprintln(os.Stderr, "leftover check: the sandbox left debris after the suite:")
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, "  -", p)
			}
			code = max(code, 1)
		} else {
			_ = os.RemoveAll(attackBase) // only when nothing is mounted below it
		}
	}
	_ = os.RemoveAll(helperDir)
	// Every Manager is closed by now: no goroutine of the package may
	// still run.
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "goroutine leak check:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// leftovers lists everything of the suite's instance still on the host:
// containers in the state root, cgroup directories under the instance's
// parent in every hierarchy (the unified and named ones included), mounts
// below the suite's temp tree or helper directory, and processes in the
// instance's cgroups or carrying the leftover marker.
func leftovers(cfg Config) []string {
	var out []string
	if ents, err := os.ReadDir(cfg.containersDir()); err == nil {
		for _, e := range ents {
			out = append(out, "container state "+filepath.Join(cfg.containersDir(), e.Name()))
		}
	}
	out = append(out, leftoverCgroups(cfg.CgroupParent)...)
	out = append(out, leftoverMounts(attackBase, helperDir)...)
	out = append(out, leftoverProcs(cfg.CgroupParent)...)
	return out
}

// attackRunLeftovers lists what a finished run may not leave while the Manager
// lives on: container state, run cgroups below the instance's parent, and
// processes in them.
func attackRunLeftovers(cfg Config) []string {
	var out []string
	if ents, err := os.ReadDir(cfg.containersDir()); err == nil {
		for _, e := range ents {
			out = append(out, "container state "+filepath.Join(cfg.containersDir(), e.Name()))
		}
	}
	for _, cg := range leftoverCgroups(cfg.CgroupParent) {
		if !strings.HasSuffix(cg, cfg.CgroupParent) {
			out = append(out, cg)
		}
	}
	return append(out, leftoverProcs(cfg.CgroupParent)...)
}

func leftoverCgroups(parent string) []string {
	var out []string
	hier, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return []string{"read /sys/fs/cgroup: " + err.Error()}
	}
	for _, h := range hier {
		dir := filepath.Join("/sys/fs/cgroup", h.Name(), parent)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, "cgroup "+p)
			}
			return nil
		})
	}
	return out
}

func leftoverMounts(dirs ...string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"read mountinfo: " + err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		for _, d := range dirs {
			if d != "" && isUnder(mp, d) {
				out = append(out, "mount "+mp)
			}
		}
	}
	return out
}

func leftoverProcs(parent string) []string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cg, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cgroup")); err == nil {
			for _, l := range strings.Split(string(cg), "\n") {
				parts := strings.SplitN(l, ":", 3)
				if len(parts) == 3 && isUnder(parts[2], parent) {
					out = append(out, fmt.Sprintf("process %d in cgroup %s: %s", pid, parts[2], procCmdline(pid)))
					break
				}
			}
		}
		if cmd := procCmdline(pid); strings.Contains(cmd, leftoverMarker) {
			out = append(out, fmt.Sprintf("process %d with the marker: %s", pid, cmd))
		}
	}
	return out
}

func procCmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// unescapeMountinfo undoes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
