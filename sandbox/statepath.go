package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// resolvePath returns p with every symbolic link in its existing part
// resolved; the part that does not exist yet is appended as it is. The
// state root must be spelled as the kernel spells it: the sweep and the
// skeleton's removal find their mounts by their path in
// /proc/self/mountinfo, which names resolved paths, and libcontainer
// refuses a container root with a link in its path. A state root such as
// /var/run/execgate, where /var/run is a link to /run, would otherwise fail
// every run and leave its mounts behind.
func resolvePath(p string) (string, error) {
	var rest []string
	for cur := p; ; cur = filepath.Dir(cur) {
		if _, err := os.Lstat(cur); err == nil {
			r, err := filepath.EvalSymlinks(cur)
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", cur, err)
			}
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolve %s: %w", cur, err)
		}
		if cur == filepath.Dir(cur) {
			return p, nil
		}
		rest = append(rest, filepath.Base(cur))
	}
}
