package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/execgate/execgate/sandbox"
)

// TestServeRefusesToStart: one clear line and a non-zero exit for each
// setup that must not serve.
func TestServeRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		_ = os.Chmod(p, mode)
		return p
	}
	key := write("k", "0123456789abcdef0123456789abcdef", 0o600)
	openKey := write("open", "0123456789abcdef0123456789abcdef", 0o644)
	badPolicy := write("bad.yaml", "version: 1\nnonsense: true\n", 0o600)
	state := filepath.Join(dir, "state")
	base := []string{"--state-dir", state, "--jwt-issuer", "I", "--jwt-audience", "A", "--listen", "127.0.0.1:0"}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown config key", []string{"--config", write("c.yaml", "listen: 127.0.0.1:1\nlisen: x\n", 0o600)}, "c.yaml:2: field lisen not found"},
		{"config readable by others", []string{"--config", write("c2.yaml", "listen: 127.0.0.1:1\n", 0o644)}, "readable or writable by group or others"},
		{"non-loopback in dev mode", []string{"--listen", "0.0.0.0:8080", "--state-dir", state}, "not loopback"},
		{"non-loopback metrics without metrics_allow", append([]string{"--jwt-key", key, "--policy", badPolicy, "--metrics-listen", "0.0.0.0:9091"}, base...),
			"metrics_listen: 0.0.0.0:9091 is not loopback: set network.metrics_allow"},
		{"non-loopback metrics from the config file", append([]string{"--jwt-key", key, "--policy", badPolicy,
			"--config", write("c5.yaml", "metrics_listen: \"[::]:9091\"\n", 0o600)}, base...), "metrics_listen: [::]:9091 is not loopback"},
		{"key readable by others", append([]string{"--jwt-key", openKey, "--policy", badPolicy}, base...), "readable or writable by group or others"},
		{"unusable key", append([]string{"--jwt-key", write("short", "abc", 0o600), "--policy", badPolicy}, base...), "HMAC secret of 3 bytes"},
		{"invalid policy", append([]string{"--jwt-key", key, "--policy", badPolicy}, base...), "nonsense"},
		{"invalid seccomp profile file", append([]string{"--jwt-key", key, "--policy", write("sc.yaml", "version: 1\nroles: {viewer: {}}\nprofiles: {p: {seccomp: "+
			write("sc.json", `{"allow":["read","ptrace"]}`, 0o644)+"}}\ndefaults: {profile: p}\ncommands: {echo: {path: /usr/bin/echo, roles: [viewer]}}\n", 0o600)}, base...),
			`bad_seccomp: seccomp profile file "` + filepath.Join(dir, "sc.json") + `": bad seccomp profile: "ptrace" is never allowed`},
		{"missing issuer", []string{"--jwt-key", key, "--policy", badPolicy, "--state-dir", state}, "issuer and audience"},
		{"key not owned by the front user", append([]string{"--jwt-key", key, "--policy", "../../policies/default.yaml",
			"--config", write("c3.yaml", "user: nobody\n", 0o600)}, base...), "must own it"},
		{"no front user", append([]string{"--jwt-key", key, "--policy", "../../policies/default.yaml",
			"--config", write("c4.yaml", "user: no-such-user-here\n", 0o600)}, base...), "no-such-user-here"},
		{"bad flag", []string{"--bogus"}, ""},
	}
	// These get past the checks serve makes before it requires root (and
	// a custom seccomp file must be owned by root).
	needsRoot := map[string]bool{"key readable by others": true, "unusable key": true, "invalid policy": true,
		"invalid seccomp profile file": true, "missing issuer": true, "key not owned by the front user": true}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if needsRoot[tc.name] {
				needRoot(t)
			}
			code, _, errs := cli(append([]string{"serve"}, tc.args...)...)
			if code == 0 || !strings.Contains(errs, tc.want) {
				t.Fatalf("got exit %d, stderr %q; want non-zero and %q", code, errs, tc.want)
			}
			if tc.want != "" && strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("stderr has several lines: %q", errs)
			}
		})
	}
}

// buildBinary builds execgate for an end-to-end test, with the flags of
// the shipped binary (scripts/goflags.sh).
func buildBinary(t *testing.T) string {
	t.Helper()
	return buildBinaryWithout(t, "")
}

// buildBinaryWithout builds execgate with the shipped flags less the build
// tag drop ("" drops none).
func buildBinaryWithout(t *testing.T, drop string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "execgate")
	flags, err := exec.Command("bash", "-c", `. ../../scripts/goflags.sh && printf '%s\n%s' "$GO_TAGS" "$GO_LDFLAGS_STATIC"`).Output()
	if err != nil {
		t.Fatalf("read scripts/goflags.sh: %v", err)
	}
	tags, ldflags, _ := strings.Cut(string(flags), "\n")
	if drop != "" {
		kept := slices.DeleteFunc(strings.Split(tags, ","), func(tag string) bool { return tag == drop })
		if len(kept) == len(strings.Split(tags, ",")) {
			t.Fatalf("build tag %q is not among %q", drop, tags)
		}
		tags = strings.Join(kept, ",")
	}
	cmd := exec.Command("go", "build", "-tags", tags, "-ldflags", ldflags, "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// testInstance is a sandbox instance name unique to this test process
// (an instance's state root and cgroup parent belong to one gateway).
func testInstance(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, os.Getpid())
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeDevModeEndToEnd starts `execgate serve` in development mode as
// root: the front runs unprivileged, the printed token works, SIGTERM with
// a command running leaves nothing behind.
func TestServeDevModeEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "" {
			t.Skip("needs root (with CI set: fails)")
		}
		t.Fatal("needs root under CI")
	}
	if testing.Short() {
		t.Skip("builds the binary: not in -short mode")
	}
	bin := buildBinary(t)
	state := t.TempDir()
	// The front (nobody) must reach the state dir: search permission only.
	if err := os.Chmod(filepath.Dir(state), 0o711); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	// The gateway tests' policy, with its workspaces in the temp tree.
	tmpl, err := os.ReadFile("../../gateway/testdata/policy.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(state, "policy.yaml")
	if err := os.WriteFile(pol, bytes.ReplaceAll(tmpl, []byte("{{WS}}"), []byte(filepath.Join(state, "ws"))), 0o644); err != nil {
		t.Fatal(err)
	}
	instance := testInstance("serve-e2e")
	cmd := exec.Command(bin, "serve", "--listen", addr, "--metrics-listen", freePort(t), "--state-dir", state, "--instance", instance, "--policy", pol)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	var out []string
	var token string
	for sc.Scan() {
		out = append(out, sc.Text())
		if strings.HasPrefix(sc.Text(), "eyJ") {
			token = sc.Text()
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if token == "" || !strings.Contains(strings.Join(out, "\n"), "DEVELOPMENT MODE") {
		t.Fatalf("no dev banner/token: %q\n%s", out, stderr.String())
	}
	checkDevToken(t, token)
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/exec", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	var code int
	var m map[string]any
	deadline := time.Now().Add(20 * time.Second)
	for code == 0 && time.Now().Before(deadline) {
		code, m = post(`{"command":"echo","args":["e2e"]}`)
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 || m["stdout"] != "e2e\n" {
		t.Fatalf("exec: got %d %v\n%s", code, m, stderr.String())
	}
	// SIGHUP reloads (executor and front); the front audits it.
	_ = cmd.Process.Signal(syscall.SIGHUP)
	reloaded := func() bool {
		b, _ := os.ReadFile(filepath.Join(state, "audit.log"))
		return bytes.Contains(b, []byte(`"type":"policy_reload"`))
	}
	for end := time.Now().Add(10 * time.Second); !reloaded() && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if !reloaded() {
		t.Errorf("no policy_reload audit line after SIGHUP")
	}
	// The network-facing front is not root.
	if front := frontUID(t, cmd.Process.Pid); front == 0 {
		t.Errorf("front runs as uid 0")
	}
	checkRotation(t, cmd.Process, filepath.Join(state, "audit.log"), post)
	checkHealthFeatures(t, bin, state, addr, token)
	done := make(chan struct{})
	go func() {
		defer close(done)
		post(`{"command":"sleep","args":["26"]}`)
	}()
	waitSleep := time.Now().Add(10 * time.Second)
	for len(sleepers("26")) == 0 && time.Now().Before(waitSleep) {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
	} else {
		removeStateRoot(t, instance)
	}
	<-done
	if p := sleepers("26"); len(p) != 0 {
		t.Errorf("sandboxed processes outlived the server: %v", p)
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("the dev token reached the log")
	}
}

// removeStateRoot removes the state root a cleanly stopped serve of the
// instance keeps (its lock file and an empty containers directory), not
// recursively: anything else in it is a leftover and fails t.
func removeStateRoot(t *testing.T, instance string) {
	t.Helper()
	root := filepath.Join(sandbox.DefaultStateRootBase, instance)
	for _, p := range []string{filepath.Join(root, "lock"), filepath.Join(root, "containers"), root} {
		if err := os.Remove(p); err != nil {
			t.Errorf("state root after a clean stop: %v (left: %v)", err, dirNames(t, root))
			return
		}
	}
}

// frontUID finds the uid of the child "serve" process of pid.
func frontUID(t *testing.T, pid int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || !bytes.Contains(status, []byte(fmt.Sprintf("\nPPid:\t%d\n", pid))) {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "Uid:") {
				var uid int
				fmt.Sscanf(strings.Fields(line)[1], "%d", &uid)
				return uid
			}
		}
	}
	t.Fatal("no front process found")
	return -1
}

func sleepers(arg string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasSuffix(b, []byte("sleep\x00"+arg+"\x00")) {
			out = append(out, e.Name())
		}
	}
	return out
}

// checkRotation rotates the audit log of a running split serve as
// docs/audit.md says. Rename + SIGUSR1: the root executor creates the new
// file for the front (mode 0600, the front's), then forwards the signal;
// the next exec's lines go to the new file only. The same with a new file
// put there by hand. A rename without SIGUSR1 fails closed (the front
// cannot create a file in root's state directory): 503 audit_unavailable,
// nothing runs, until SIGUSR1.
func checkRotation(t *testing.T, p *os.Process, log string, post func(string) (int, map[string]any)) {
	t.Helper()
	st, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	owner := st.Sys().(*syscall.Stat_t)
	execUntil := func(want int, body string) map[string]any {
		var code int
		var m map[string]any
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if code, m = post(body); code == want {
				return m
			}
		}
		t.Fatalf("exec %s: got %d %v, want %d", body, code, m, want)
		return nil
	}
	onlyInNew := func(step, old string, m map[string]any) {
		rid, _ := m["request_id"].(string)
		cur, _ := os.ReadFile(log)
		prev, _ := os.ReadFile(old)
		if rid == "" || !bytes.Contains(cur, []byte(`"exec_end","request_id":"`+rid)) || bytes.Contains(prev, []byte(rid)) {
			t.Errorf("%s: exec %s's lines not (only) in the new file:\n%s", step, rid, cur)
		}
		st, err := os.Stat(log)
		if err != nil {
			t.Fatal(err)
		}
		if o := st.Sys().(*syscall.Stat_t); o.Uid != owner.Uid || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: new audit log uid %d mode %v, want the front's %d and 0600", step, o.Uid, st.Mode().Perm(), owner.Uid)
		}
	}
	rename := func(to string) {
		if err := os.Rename(log, to); err != nil {
			t.Fatal(err)
		}
	}
	// 1. Rename, SIGUSR1: the executor creates the file.
	rename(log + ".1")
	_ = p.Signal(syscall.SIGUSR1)
	onlyInNew("rename + SIGUSR1", log+".1", execUntil(200, `{"command":"echo","args":["rotated"]}`))
	// 2. Rename, a new file by hand (logrotate's create), SIGUSR1.
	rename(log + ".2")
	if err := os.WriteFile(log, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(log, int(owner.Uid), int(owner.Gid)); err != nil {
		t.Fatal(err)
	}
	_ = p.Signal(syscall.SIGUSR1)
	onlyInNew("rename + create + SIGUSR1", log+".2", execUntil(200, `{"command":"echo","args":["created"]}`))
	// 3. Rename without a signal: fail closed, recover on SIGUSR1.
	rename(log + ".3")
	m := execUntil(503, `{"command":"echo","args":["unrecorded"]}`)
	if e, _ := m["error"].(map[string]any); e["code"] != "audit_unavailable" {
		t.Errorf("exec without an audit file: got %v, want audit_unavailable", m)
	}
	_ = p.Signal(syscall.SIGUSR1)
	onlyInNew("SIGUSR1 after a silent rename", log+".3", execUntil(200, `{"command":"echo","args":["recovered"]}`))
}

// checkDevToken: the dev token is what the issue says: subject dev, role
// operator (no more), one hour.
func checkDevToken(t *testing.T, token string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("dev token is not a JWS: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
		Iat   int64    `json:"iat"`
		Exp   int64    `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if c.Sub != "dev" || !slices.Equal(c.Roles, []string{"operator"}) || c.Exp-c.Iat != 3600 {
		t.Errorf("dev token: sub %q roles %v lifetime %ds, want dev [operator] 3600s", c.Sub, c.Roles, c.Exp-c.Iat)
	}
}

// checkHealthFeatures: GET /v1/health of a split serve, with an admin
// token minted by `execgate token` on the dev key, reports the sandbox
// self-check the root side ran (the front has no sandbox of its own).
func checkHealthFeatures(t *testing.T, bin, state, addr, devToken string) {
	t.Helper()
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(devToken, ".")[1])
	var c struct {
		Iss string `json:"iss"`
		Aud any    `json:"aud"`
	}
	_ = json.Unmarshal(payload, &c)
	aud := fmt.Sprint(c.Aud)
	if l, ok := c.Aud.([]any); ok && len(l) > 0 {
		aud = fmt.Sprint(l[0])
	}
	out, err := exec.Command(bin, "token", "--key", filepath.Join(state, devKeyName), "--sub", "ops", "--roles", "admin",
		"--ttl", "5m", "--iss", c.Iss, "--aud", aud, "--kid", "dev").Output()
	if err != nil {
		t.Fatalf("execgate token: %v", err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/health", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(out)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Sandbox struct {
			PrivilegeSplit bool `json:"privilege_split"`
			Selfcheck      []struct {
				Name string `json:"name"`
				OK   bool   `json:"ok"`
			} `json:"selfcheck"`
		} `json:"sandbox"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/health: %d %v", resp.StatusCode, err)
	}
	if !h.Sandbox.PrivilegeSplit || len(h.Sandbox.Selfcheck) < 5 {
		t.Fatalf("/v1/health sandbox: %+v, want the split and the root side's self-check", h.Sandbox)
	}
	for _, ch := range h.Sandbox.Selfcheck {
		if !ch.OK {
			t.Errorf("/v1/health reports check %s failed on a host that started", ch.Name)
		}
	}
}
