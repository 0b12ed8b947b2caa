package policy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// maxSecretsBytes bounds the secrets file.
const maxSecretsBytes = 1 << 20

// readSecretsFile reads a KEY=VALUE secrets file. It must be a regular file
// (not a symlink) owned by root with no group or other permissions (0600 or
// stricter). Blank lines and lines starting with # are ignored; values are
// taken literally (no quotes, no escapes). Errors never contain a value.
func readSecretsFile(name string) (map[string]string, error) {
	if !isAbsClean(name) {
		return nil, fmt.Errorf("secrets_file %q must be an absolute clean path", name)
	}
	f, st, err := openRegular(name, syscall.O_NOFOLLOW)
	if err != nil {
		return nil, fmt.Errorf("open secrets file %s: %w", name, err)
	}
	defer f.Close()
	if err := checkSecretsMode(st); err != nil {
		return nil, fmt.Errorf("secrets file %s: %w", name, err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read secrets file %s: %w", name, err)
	}
	if len(data) > maxSecretsBytes {
		return nil, fmt.Errorf("secrets file %s is larger than %d bytes", name, maxSecretsBytes)
	}
	return parseSecrets(name, data)
}

func checkSecretsMode(st os.FileInfo) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("not owned by root")
	}
	return checkRootOwned(sys.Mode, sys.Uid, syscall.S_IFREG, 0o077, 0, "0600")
}

func parseSecrets(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxSecretsBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !envNameRE.MatchString(k) {
			return nil, fmt.Errorf("secrets file %s line %d: want KEY=VALUE", name, n)
		}
		if strings.ContainsAny(v, "\x00\n") {
			return nil, fmt.Errorf("secrets file %s line %d: value of %s has a control character", name, n, k)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read secrets file %s: %w", name, err)
	}
	return out, nil
}
