package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// helperDir holds the static helper programs the tests build (the probe and
// cgenter). TestMain creates it before the tests and removes it after; it
// lives outside the sandbox state root and is mounted read-only into
// sandboxes that run the probe.
var helperDir string

// cProgram is a static C program under testdata/probe, built once per test
// binary.
type cProgram struct {
	name string   // output file name in helperDir
	src  []string // sources under testdata/probe; the first is compiled
	once sync.Once
	path string
	err  error
}

var (
	probeProgram   = &cProgram{name: "probe", src: []string{"probe.c", "attacks.h"}}
	cgenterProgram = &cProgram{name: "cgenter", src: []string{"cgenter.c"}}
)

// build compiles the program with gcc -static (glibc static works on
// Debian 12) and returns its path.
func (p *cProgram) build() (string, error) {
	p.once.Do(func() {
		if helperDir == "" {
			p.err = fmt.Errorf("build %s: helper directory not set up (TestMain)", p.name)
			return
		}
		src, err := filepath.Abs(filepath.Join("testdata", "probe", p.src[0]))
		if err != nil {
			p.err = fmt.Errorf("build %s: %w", p.name, err)
			return
		}
		out := filepath.Join(helperDir, p.name)
		cmd := exec.Command("gcc", "-static", "-O2", "-Wall", "-Werror", "-o", out, src)
		if msg, err := cmd.CombinedOutput(); err != nil {
			p.err = fmt.Errorf("build %s: gcc -static: %w\n%s", p.name, err, msg)
			return
		}
		p.path = out
	})
	return p.path, p.err
}

// setupHelperDir creates helperDir: world-readable and executable, since
// the probe runs as an unprivileged uid inside the sandbox.
func setupHelperDir() error {
	dir, err := os.MkdirTemp("", "execgate-attack-helpers-")
	if err != nil {
		return fmt.Errorf("create helper dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("chmod helper dir: %w", err)
	}
	helperDir = dir
	return nil
}
