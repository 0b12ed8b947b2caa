package sandbox

import (
	"slices"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"

	"github.com/execgate/execgate/policy"
)

func TestNoexecAllow(t *testing.T) {
	tests := []struct {
		name      string
		allow     []string
		want      []string
		wantInput []string
	}{
		{"drops memfd", []string{"read", "memfd_create", "write"}, []string{"read", "write"}, []string{"read", "memfd_create", "write"}},
		{"drops memfd_secret", []string{"memfd_secret", "read"}, []string{"read"}, []string{"memfd_secret", "read"}},
		{"nothing to drop", []string{"read"}, []string{"read"}, []string{"read"}},
		{"empty", nil, []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.allow)
			if got := noexecAllow(in); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !slices.Equal(in, tt.wantInput) {
				t.Errorf("input changed to %v, want %v", in, tt.wantInput)
			}
		})
	}
}

func TestSeccompKey(t *testing.T) {
	tests := []struct {
		name, seccomp, data string
		noexec              bool
		want                string
	}{
		{"default", SeccompDefault, "", false, "default"},
		{"default noexec", SeccompDefault, "", true, "default+noexec"},
		{"strict noexec", SeccompStrict, "", true, "strict+noexec"},
		{"strict ignores data", SeccompStrict, `{"allow":["read"]}`, false, "strict"},
		// sha256 of `{"allow":["read"]}`: the content, never the path.
		{"custom", "tools", `{"allow":["read"]}`, false, "sha256:eb1aebf03cd5ccb6e231a1f1cd433302aae7c3426199c94087f647a04c806d08"},
		{"custom noexec", "tools", `{"allow":["read"]}`, true, "sha256:eb1aebf03cd5ccb6e231a1f1cd433302aae7c3426199c94087f647a04c806d08+noexec"},
		{"custom, other content", "tools", `{"allow":["write"]}`, false, "sha256:174756b5cdf00ceae08844ee763b6e44153fea80b44c6d7fb9bb4b874a981958"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seccompKey(tt.seccomp, []byte(tt.data), tt.noexec); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSeccompForNoexec checks the Manager's compiled configs: a noexec
// profile has no rule for memfd_create, the same profile without noexec
// allows it, and the two are cached apart.
func TestSeccompForNoexec(t *testing.T) {
	m := newTestManager(t)
	has := func(p *policy.Profile) bool {
		sc, err := m.seccompFor(p)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(sc.rules.Syscalls, func(s *configs.Syscall) bool { return s.Name == "memfd_create" })
	}
	if !has(&policy.Profile{Seccomp: SeccompDefault}) {
		t.Error("default without noexec: memfd_create not allowed, want allowed")
	}
	if has(&policy.Profile{Seccomp: SeccompDefault, NoExecWork: true}) {
		t.Error("default with noexec: memfd_create allowed, want no rule (EPERM)")
	}
	if !has(&policy.Profile{Seccomp: SeccompDefault}) {
		t.Error("default without noexec after the noexec one: memfd_create not allowed (cache mixed up)")
	}
}
