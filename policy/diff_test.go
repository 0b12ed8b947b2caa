package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func diffFixture(t testing.TB, name string) *Set {
	t.Helper()
	return lintFixture(t, filepath.Join("testdata", "diff", name))
}

func renderDiff(t *testing.T, changes []Change) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteDiff(&b, changes); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDiffReorderedIsEquivalent: a reordered, restyled and recommented but
// equivalent file reports no difference, and hashes alike.
func TestDiffReorderedIsEquivalent(t *testing.T) {
	base, re := diffFixture(t, "base.yaml"), diffFixture(t, "reordered.yaml")
	if got := Diff(base, re); len(got) != 0 {
		t.Errorf("Diff(base, reordered) = %d changes, want none:\n%s", len(got), renderDiff(t, got))
	}
	if got := Diff(re, base); len(got) != 0 {
		t.Errorf("Diff(reordered, base) = %d changes, want none:\n%s", len(got), renderDiff(t, got))
	}
	if base.Hash() != re.Hash() {
		t.Errorf("hashes differ: base %s, reordered %s", base.Hash(), re.Hash())
	}
	checkToolGolden(t, filepath.Join("testdata", "diff", "base_reordered.golden"), renderDiff(t, Diff(base, re)))
}

// TestDiffGolden renders both directions of a change of every kind.
func TestDiffGolden(t *testing.T) {
	base, changed := diffFixture(t, "base.yaml"), diffFixture(t, "changed.yaml")
	checkToolGolden(t, filepath.Join("testdata", "diff", "base_changed.golden"), renderDiff(t, Diff(base, changed)))
	checkToolGolden(t, filepath.Join("testdata", "diff", "changed_base.golden"), renderDiff(t, Diff(changed, base)))
}

// TestDiffClassification pins the direction of each kind of change.
func TestDiffClassification(t *testing.T) {
	got := Diff(diffFixture(t, "base.yaml"), diffFixture(t, "changed.yaml"))
	tests := []struct {
		name  string
		kind  ChangeKind
		where string
		what  string
	}{
		{"new command", Loosened, "commands.cat", "new command cat"},
		{"removed command", Tightened, "commands.head", "command removed"},
		{"new subcommand", Loosened, "commands.git.subcommands.show", "new subcommand show"},
		{"removed subcommand", Tightened, "commands.git.subcommands.commit", "subcommand removed"},
		{"role may now run", Loosened, "commands.git", "role auditor added"},
		{"new flag", Loosened, "commands.ls", "flag --recursive, -R allowed"},
		{"new flag spelling", Loosened, "commands.ls flag --all", "spelling -A added"},
		{"deny entry removed", Loosened, "commands.git", "denied flag --upload-pack removed"},
		{"deny entry added", Tightened, "commands.git", "denied flag --git-dir added"},
		{"end_of_options removed", Loosened, "commands.ls", `end_of_options "--" removed`},
		{"bundling disabled", Tightened, "commands.ls", "bundled short flags disabled"},
		{"int max unbounded", Loosened, "commands.git.subcommands.log flag --max-count", "value max 100 -> +inf"},
		{"int min lowered", Loosened, "commands.git.subcommands.log flag --max-count", "value min 1 -> 0"},
		{"enum value added", Loosened, "commands.git.subcommands.log flag --format", "value enum value full added"},
		{"enum value removed", Tightened, "commands.git.subcommands.log flag --format", "value enum value short removed"},
		{"regex changed", Changed, "commands.git.subcommands.log flag --author", "value pattern"},
		{"text multiline", Loosened, "commands.git.subcommands.log flag --grep", "value may now span lines"},
		{"path need not exist", Loosened, "commands.git.subcommands.log", "further positionals no longer needs to exist"},
		{"positionals max", Loosened, "commands.ls", "positionals max 4 -> 8"},
		{"path root swapped in", Loosened, "commands.ls", "further positionals root shared added"},
		{"path root swapped out", Tightened, "commands.ls", "further positionals root docs removed"},
		{"client env added", Loosened, "commands.ls", "client may set env LANG"},
		{"client env removed", Tightened, "commands.ls", "client may no longer set env TZ"},
		{"fixed env changed", Changed, "commands.ls", `env HOME="/work" -> "/tmp"`},
		{"memory lowered", Tightened, "profiles.small", "memory 128MiB -> 64MiB"},
		{"timeout raised", Loosened, "profiles.small", "timeout 10s -> 20s"},
		{"output rate unlimited", Loosened, "profiles.small", "output_rate 1MiB -> unlimited"},
		{"network", Loosened, "profiles.small", "network none -> loopback"},
		{"tty", Loosened, "profiles.big", "terminal (tty) enabled"},
		{"umask", Loosened, "profiles.big", "umask 0077 -> 0022"},
		{"seccomp", Tightened, "profiles.big", "seccomp default -> strict"},
		{"mount added", Loosened, "profiles.small", "mount shared added"},
		{"mount removed", Tightened, "profiles.small", "mount docs removed"},
		{"root added", Loosened, "roots.shared", "new root /srv/execgate-test-shared at /shared (writable)"},
		{"root removed", Tightened, "roots.docs", "root removed"},
		{"root host changed", Changed, "roots.workspace", "host /var/lib/execgate-test/workspaces/{sub} -> /srv/execgate-test/workspaces/{sub}"},
		{"new role", Changed, "roles.auditor", "new role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok := slices.ContainsFunc(got, func(c Change) bool {
				return c.Kind == tc.kind && c.Where == tc.where && strings.Contains(c.What, tc.what)
			})
			if !ok {
				t.Errorf("missing %s %s: %q in:\n%s", tc.kind, tc.where, tc.what, renderDiff(t, got))
			}
		})
	}
}

// TestDiffSymmetry: swapping OLD and NEW swaps loosened and tightened;
// changes of unknown direction stay changes.
func TestDiffSymmetry(t *testing.T) {
	base, changed := diffFixture(t, "base.yaml"), diffFixture(t, "changed.yaml")
	fwd, back := Diff(base, changed), Diff(changed, base)
	count := func(cs []Change, k ChangeKind) int {
		n := 0
		for _, c := range cs {
			if c.Kind == k {
				n++
			}
		}
		return n
	}
	pairs := []struct{ a, b ChangeKind }{{Loosened, Tightened}, {Tightened, Loosened}, {Changed, Changed}}
	for _, p := range pairs {
		if got, want := count(fwd, p.a), count(back, p.b); got != want {
			t.Errorf("forward %s = %d, backward %s = %d, want equal", p.a, got, p.b, want)
		}
	}
	if !slices.IsSortedFunc(fwd, func(a, b Change) int { return kindRank(a.Kind) - kindRank(b.Kind) }) {
		t.Errorf("changes not sorted by kind")
	}
}

func TestDiffJSON(t *testing.T) {
	got := Diff(diffFixture(t, "base.yaml"), diffFixture(t, "changed.yaml"))
	data, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back []Change
	if err := json.Unmarshal(data, &back); err != nil || !slices.Equal(back, got) {
		t.Errorf("JSON round trip: err %v, equal %t", err, slices.Equal(back, got))
	}
}

// TestDiffShippedAgainstThemselves: the shipped policies diff clean against
// themselves, and default vs code-runner reports both directions.
func TestDiffShippedAgainstThemselves(t *testing.T) {
	def := lintFixture(t, filepath.Join("..", "policies", "default.yaml"))
	cr := lintFixture(t, filepath.Join("..", "policies", "code-runner.yaml"))
	if got := Diff(def, def); len(got) != 0 {
		t.Errorf("Diff(default, default) = %d changes, want none", len(got))
	}
	got := Diff(def, cr)
	if !slices.ContainsFunc(got, func(c Change) bool { return c.Kind == Tightened && c.Where == "commands.git" }) {
		t.Errorf("Diff(default, code-runner) misses the removed git command")
	}
}

// FuzzDiffSelf: any policy that loads diffs clean against itself, and
// against a copy loaded under another name.
func FuzzDiffSelf(f *testing.F) {
	for _, name := range []string{"base.yaml", "reordered.yaml", "changed.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "diff", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := LoadOptions{SkipBinaryCheck: true, StateDir: "/var/lib/execgate"}
		a, err := LoadBytes("a.yaml", data, opts)
		if err != nil {
			return
		}
		b, err := LoadBytes("b.yaml", data, opts)
		if err != nil {
			t.Fatalf("loads as a.yaml but not as b.yaml: %v", err)
		}
		if got := Diff(a, b); len(got) != 0 {
			t.Fatalf("Diff of a policy with itself: %v", got)
		}
	})
}

// BenchmarkDiffDefaultCodeRunner compares the two shipped policies.
func BenchmarkDiffDefaultCodeRunner(b *testing.B) {
	def := lintFixture(b, filepath.Join("..", "policies", "default.yaml"))
	cr := lintFixture(b, filepath.Join("..", "policies", "code-runner.yaml"))
	b.ReportAllocs()
	for b.Loop() {
		if len(Diff(def, cr)) == 0 {
			b.Fatal("no difference")
		}
	}
}

// TestDiffInheritedOnce: a change on a command that its subcommands
// inherit is reported on the command only.
func TestDiffInheritedOnce(t *testing.T) {
	got := Diff(diffFixture(t, "inherit_old.yaml"), diffFixture(t, "inherit_new.yaml"))
	want := []Change{
		{Loosened, "commands.git", "bundled short flags enabled"},
		{Loosened, "commands.git", "long-flag prefix matching enabled"},
		{Loosened, "commands.git", "role dev added"},
		{Tightened, "commands.git", "denied flag --exec added"},
		{Tightened, "commands.git", "max_args 64 -> 16"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", renderDiff(t, got), renderDiff(t, want))
	}
}
