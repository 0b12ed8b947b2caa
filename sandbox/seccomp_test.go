package sandbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"

	"github.com/execgate/execgate/policy"
)

func matchesAny(rules []maskValue, v uint64) bool {
	for _, r := range rules {
		if v&r.mask == r.value {
			return true
		}
	}
	return false
}

func TestComplement32(t *testing.T) {
	rules := complement32(deniedIoctls)
	for _, denied := range deniedIoctls {
		for _, high := range []uint64{0, 1 << 32, 0xFFFFFFFF00000000} {
			if matchesAny(rules, (denied|high)&low32) {
				t.Errorf("%#x (high bits %#x) is allowed", denied, high)
			}
		}
	}
	for _, ok := range []uint64{unix.TCGETS, unix.TIOCGWINSZ, unix.TIOCSWINSZ, unix.TIOCINQ, 0, low32, unix.TIOCSTI + 1, unix.TIOCSTI - 1} {
		if !matchesAny(rules, ok) {
			t.Errorf("%#x is denied, want allowed", ok)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := uint64(r.Uint32())
		if want := !slices.Contains(deniedIoctls, v); matchesAny(rules, v) != want {
			t.Fatalf("%#x: got allowed %v, want %v", v, !want, want)
		}
	}
	if got := complement32(nil); len(got) != 1 || got[0].mask != 0 {
		t.Errorf("complement of nothing: got %+v, want one match-all rule", got)
	}
}

func TestCompileSeccomp(t *testing.T) {
	sc, err := compileSeccomp(defaultAllow)
	if err != nil {
		t.Fatal(err)
	}
	if sc.DefaultAction != configs.Errno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != uint(unix.EPERM) || len(sc.Architectures) != 0 {
		t.Errorf("got default %v errno %v arches %v, want errno EPERM, native only", sc.DefaultAction, sc.DefaultErrnoRet, sc.Architectures)
	}
	byName := map[string][]*configs.Syscall{}
	for _, s := range sc.Syscalls {
		byName[s.Name] = append(byName[s.Name], s)
	}
	for _, f := range forbiddenSyscalls {
		if len(byName[f]) > 0 {
			t.Errorf("forbidden syscall %s has a rule", f)
		}
	}
	if c3 := byName["clone3"]; len(c3) != 1 || c3[0].Action != configs.Errno || *c3[0].ErrnoRet != uint(unix.ENOSYS) {
		t.Errorf("clone3: got %+v, want one ENOSYS rule", c3)
	}
	for _, name := range []string{"clone", "socket", "socketpair", "ioctl", "personality"} {
		for _, r := range byName[name] {
			if len(r.Args) != 1 || r.Args[0].Op != configs.MaskEqualTo {
				t.Errorf("%s: unconditional or unmasked rule %+v", name, r)
			}
		}
	}
	if c := byName["clone"]; len(c) != 1 || c[0].Args[0].Value != cloneNamespaceFlags || c[0].Args[0].ValueTwo != 0 {
		t.Errorf("clone: got %+v, want allowed only without namespace flags", c)
	}
	for _, r := range byName["socket"] {
		if fam := r.Args[0].ValueTwo; fam == unix.AF_VSOCK || fam == unix.AF_ALG || r.Args[0].Value != low32 {
			t.Errorf("socket rule %+v: family %d allowed or compare not 32-bit", r, fam)
		}
	}
	strict, err := compileSeccomp(strictAllow)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strict.Syscalls {
		if s.Name == "socket" || s.Name == "connect" || s.Name == "socketpair" {
			t.Errorf("strict profile allows %s", s.Name)
		}
	}
	if len(strict.Syscalls) >= len(sc.Syscalls) {
		t.Errorf("strict has %d rules, default %d: want fewer", len(strict.Syscalls), len(sc.Syscalls))
	}
}

func TestValidateSyscallNames(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		ok    bool
	}{
		{"known", []string{"read", "write", "exit_group"}, true},
		{"built-in default list", defaultAllowKnown(), true},
		{"unknown", []string{"read", "frobnicate"}, false},
		{"forbidden mount", []string{"mount"}, false},
		{"forbidden ptrace", []string{"read", "ptrace"}, false},
		{"duplicate", []string{"read", "read"}, false},
		{"empty name", []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSyscallNames(tt.names)
			if (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrSeccompProfile) {
				t.Errorf("got %v, want it to match ErrSeccompProfile", err)
			}
		})
	}
}

// defaultAllowKnown is defaultAllow without names libseccomp does not know
// on this architecture.
func defaultAllowKnown() []string {
	var out []string
	for _, n := range defaultAllow {
		if ValidateSyscallNames([]string{n}) == nil {
			out = append(out, n)
		}
	}
	return out
}

func TestParseSeccompFile(t *testing.T) {
	tests := []struct {
		name, data string
		ok         bool
	}{
		{"minimal", `{"allow":["read","write","exit_group"]}`, true},
		{"with description", `{"description":"x","allow":["read"]}`, true},
		{"empty allow", `{"allow":[]}`, false},
		{"unknown field", `{"allow":["read"],"deny":["write"]}`, false},
		{"trailing", `{"allow":["read"]} {}`, false},
		{"not json", `allow: [read]`, false},
		{"forbidden", `{"allow":["read","bpf"]}`, false},
		{"wrong type", `{"allow":"read"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSeccompFile([]byte(tt.data))
			if (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func FuzzParseSeccompFile(f *testing.F) {
	f.Add([]byte(`{"allow":["read","write"]}`))
	f.Add([]byte(`{"allow":["mount"]}`))
	f.Add([]byte(`{"allow":[""]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseSeccompFile(data)
		if err != nil {
			return
		}
		if err := ValidateSyscallNames(sf.Allow); err != nil {
			t.Fatalf("parsed profile fails validation: %v", err)
		}
		sc, err := compileSeccomp(sf.Allow)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sc.Syscalls {
			if slices.Contains(forbiddenSyscalls, s.Name) {
				t.Fatalf("forbidden %s compiled in", s.Name)
			}
		}
	})
}

// TestCheckSeccompProfile is what `execgate policy check` and the
// gateway's policy load run on the content of a custom profile file:
// libseccomp's table, the forbidden list, duplicates, and the calls PID 1
// needs.
func TestCheckSeccompProfile(t *testing.T) {
	pid1 := `"read","write","close","rt_sigtimedwait","wait4","kill","exit_group","execve"`
	tests := []struct {
		name, data string
		want       []string // substrings of the error; nil: valid
	}{
		{"valid", `{"allow":[` + pid1 + `,"openat","fstat"]}`, nil},
		{"misspelt", `{"allow":[` + pid1 + `,"opneat"]}`, []string{`"opneat" is not a syscall known to libseccomp`, `did you mean "openat"?`}},
		{"unknown, nothing close", `{"allow":[` + pid1 + `,"frobnicate_everything"]}`, []string{`"frobnicate_everything" is not a syscall`}},
		{"other architecture only", `{"allow":[` + pid1 + `,"socketcall"]}`, []string{`"socketcall" is not a syscall known`}},
		{"forbidden", `{"allow":[` + pid1 + `,"mount","bpf"]}`, []string{`"mount" is never allowed`, `"bpf" is never allowed`}},
		{"misspelt forbidden is not suggested", `{"allow":[` + pid1 + `,"mounnt"]}`, []string{`"mounnt" is not a syscall`}},
		{"duplicate", `{"allow":[` + pid1 + `,"read"]}`, []string{`"read" listed twice`}},
		{"PID 1 cannot supervise", `{"allow":["read","write","exit_group","execve"]}`, []string{"close", "rt_sigtimedwait", "wait4", "kill"}},
		{"not JSON", `allow: [read]`, []string{"not valid JSON (syntax error at byte 1)"}},
		{"empty", `{"allow":[]}`, []string{`"allow" is empty`}},
		{"larger than the bound", `{"allow":["read"]}` + strings.Repeat(" ", policy.MaxSeccompFileBytes), []string{"larger than 65536 bytes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSeccompProfile([]byte(tt.data))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want an error with %q", tt.want)
			}
			if !errors.Is(err, ErrSeccompProfile) {
				t.Errorf("got %v, want it to match ErrSeccompProfile", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
			if tt.name == "misspelt forbidden is not suggested" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("got %q, want no hint towards a forbidden syscall", err)
			}
		})
	}
}

// TestSeccompProfileErrorsQuoteNoContent: whatever a profile file holds,
// an error quotes no more of it than a shortened, escaped syscall name: a
// JSON error gives a position, an unknown key is not named, and a long or
// binary "name" is cut to 64 bytes and escaped.
func TestSeccompProfileErrorsQuoteNoContent(t *testing.T) {
	const secret = "root:$6$SECRETHASH"
	long := strings.Repeat("A", 100) + secret
	tests := []struct {
		name, data string
		want       string // a substring of the error
		absent     []string
	}{
		{"shadow-like line", secret + ":19000:0:99999:7:::\n", "syntax error at byte 1", []string{secret, "root", "'r'"}},
		{"JSON then garbage inside", `{"allow":["read",` + secret + `]}`, "syntax error at byte 18", []string{secret, "'r'"}},
		{"unknown key", `{"allow":["read"],"` + secret + `":1}`, `want only "description" and "allow"`, []string{secret}},
		{"wrong type", `{"allow":"` + secret + `"}`, "wrong type at byte", []string{secret}},
		{"truncated", `{"allow":["` + secret, "unexpected end", []string{secret}},
		{"long name", `{"allow":["` + long + `"]}`, `"` + strings.Repeat("A", 64) + `"...`, []string{secret, strings.Repeat("A", 65)}},
		{"control bytes", `{"allow":["a\u001b[2Jb"]}`, `"a\x1b[2Jb"`, []string{"\x1b[2J"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSeccompProfile([]byte(tt.data))
			if err == nil {
				t.Fatalf("got nil, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			for _, a := range tt.absent {
				if strings.Contains(err.Error(), a) {
					t.Errorf("got %q, want no %q in it", err, a)
				}
			}
		})
	}
	// Many bad names: the list stops after maxNameErrors.
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf(`"bad%d"`, i))
	}
	err := CheckSeccompProfile([]byte(`{"allow":[` + strings.Join(names, ",") + `]}`))
	if err == nil || !strings.Contains(err.Error(), "and 84 more bad names") || strings.Contains(err.Error(), `"bad16"`) {
		t.Errorf("100 bad names: got %v, want 16 listed and \"and 84 more bad names\"", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"openat", "openat", 0}, {"opneat", "openat", 2}, {"opena", "openat", 1}, {"", "abc", 3}, {"read", "write", 3}} {
		if got := policy.EditDistance(tt.a, tt.b, 3); got != tt.want {
			t.Errorf("EditDistance(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
