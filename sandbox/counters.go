package sandbox

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The cgroup's own counters say which limit ended a run. On v1 an OOM kill
// shows in memory.oom_control's oom_kill (memory.failcnt stays 0 here,
// trap 14); on v2 in memory.events. A refused fork shows in pids.events'
// "max" on both.

// cgroupCounters are the counters read after a run.
type cgroupCounters struct {
	OOMKills  int64
	PidsMax   int64
	readError error
}

// counterFiles returns the files holding the OOM and pids counters of the
// cgroup at path (absolute cgroup path) for the given cgroup version.
func counterFiles(version int, cgPath string) (oomFile, pidsFile string) {
	if version == 2 {
		dir := filepath.Join(cgroupMountRoot, cgPath)
		return filepath.Join(dir, "memory.events"), filepath.Join(dir, "pids.events")
	}
	return filepath.Join(cgroupMountRoot, "memory", cgPath, "memory.oom_control"),
		filepath.Join(cgroupMountRoot, "pids", cgPath, "pids.events")
}

// readCounters reads both counters; a missing file leaves its count at 0
// and records the error.
func readCounters(version int, cgPath string) cgroupCounters {
	oomFile, pidsFile := counterFiles(version, cgPath)
	var c cgroupCounters
	if data, err := os.ReadFile(oomFile); err == nil {
		c.OOMKills = parseKeyedCounter(data, "oom_kill")
	} else {
		c.readError = err
	}
	if data, err := os.ReadFile(pidsFile); err == nil {
		c.PidsMax = parseKeyedCounter(data, "max")
	} else if c.readError == nil {
		c.readError = err
	}
	return c
}

// parseKeyedCounter finds "key N" in a flat-keyed cgroup file and returns
// N, or 0 when absent or malformed.
func parseKeyedCounter(data []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			return n
		}
	}
	return 0
}
