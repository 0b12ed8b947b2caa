package executor

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// FrontFDEnv is the environment variable that tells a re-executed `serve`
// it is the front and which file descriptor is its executor socket.
const FrontFDEnv = "EXECGATE_EXECUTOR_FD"

// IsFront reports whether this process was started by Split as the front.
func IsFront() bool { return os.Getenv(FrontFDEnv) != "" }

// FrontClient is the front's side of the split: it makes sure the process
// cannot gain privileges (no_new_privs), refuses to go on unless it runs
// with a non-zero uid and no capabilities, and turns the inherited socket
// into a Client. The front exits when Client.Done is closed.
func FrontClient(ctx context.Context, log *slog.Logger) (*Client, error) {
	v := os.Getenv(FrontFDEnv)
	_ = os.Unsetenv(FrontFDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("front: %s=%q is not a file descriptor", FrontFDEnv, v)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("front: set no_new_privs: %w", err)
	}
	if err := CheckUnprivileged("/proc/self/status"); err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "executor-socket")
	if f == nil {
		return nil, fmt.Errorf("front: fd %d is not open", fd)
	}
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return nil, fmt.Errorf("front: executor socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("front: fd %d is not a unix socket", fd)
	}
	return NewClient(ctx, uc, log)
}

// CheckUnprivileged reads a /proc/<pid>/status file and fails with a
// *PrivilegedError unless every uid is non-zero and the effective,
// permitted and ambient capability sets are empty, and no_new_privs is set.
func CheckUnprivileged(statusPath string) error {
	f, err := os.Open(statusPath)
	if err != nil {
		return fmt.Errorf("check privileges: %w", err)
	}
	defer func() { _ = f.Close() }()
	st, err := parseStatus(bufio.NewScanner(f))
	if err != nil {
		return fmt.Errorf("check privileges: %s: %w", statusPath, err)
	}
	if st.minUID == 0 || st.capEff != 0 || st.capPrm != 0 || st.capAmb != 0 || !st.noNewPrivs {
		return &PrivilegedError{UID: st.minUID, CapEff: fmt.Sprintf("%016x", st.capEff), NoNewPrivs: st.noNewPrivs}
	}
	return nil
}

// procStatus is what CheckUnprivileged needs of /proc/self/status.
type procStatus struct {
	minUID                 int
	capEff, capPrm, capAmb uint64
	noNewPrivs             bool
}

func parseStatus(sc *bufio.Scanner) (procStatus, error) {
	st := procStatus{minUID: -1}
	seen := map[string]bool{}
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid":
			st.minUID, err = minField(val)
		case "CapEff":
			st.capEff, err = strconv.ParseUint(val, 16, 64)
		case "CapPrm":
			st.capPrm, err = strconv.ParseUint(val, 16, 64)
		case "CapAmb":
			st.capAmb, err = strconv.ParseUint(val, 16, 64)
		case "NoNewPrivs":
			st.noNewPrivs = val == "1"
		default:
			continue
		}
		if err != nil {
			return st, fmt.Errorf("field %s: %w", key, err)
		}
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return st, err
	}
	for _, k := range []string{"Uid", "CapEff", "CapPrm", "NoNewPrivs"} {
		if !seen[k] {
			return st, fmt.Errorf("no %s line", k)
		}
	}
	return st, nil
}

// minField returns the smallest of the whitespace-separated ids.
func minField(val string) (int, error) {
	fields := strings.Fields(val)
	if len(fields) == 0 {
		return 0, fmt.Errorf("empty")
	}
	lowest := -1
	for _, s := range fields {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad id %q", s)
		}
		if lowest < 0 || n < lowest {
			lowest = n
		}
	}
	return lowest, nil
}
