package policy

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("got:\n%s\nwant (%s):\n%s", got, path, want)
	}
}

// TestLoadErrorsGolden: a file with many mistakes reports all of them at
// once, sorted, each as file:line:col: code: message.
func TestLoadErrorsGolden(t *testing.T) {
	_, err := Load(t.Context(), []string{"testdata/errors/broken.yaml"}, LoadOptions{StateDir: "/var/lib/execgate"})
	if err == nil {
		t.Fatal("got no error, want many")
	}
	golden(t, "errors/broken.golden", []byte(err.Error()+"\n"))
}
