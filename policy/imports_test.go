package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const modulePath = "github.com/execgate/execgate"

// listedPackage is the part of `go list -json` these tests read.
type listedPackage struct {
	ImportPath   string
	Standard     bool
	CgoFiles     []string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
}

func goList(t *testing.T, env []string, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-json"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func inTree(pkg, dir string) bool {
	p := modulePath + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// TestPolicyDependencies: policy never depends on gin, libcontainer,
// libseccomp, the sandbox or the gateway, and no dependency outside the
// standard library needs cgo; it builds with CGO_ENABLED=0.
func TestPolicyDependencies(t *testing.T) {
	banned := []string{"github.com/gin-gonic/", "github.com/opencontainers/runc/", "github.com/seccomp/",
		modulePath + "/sandbox", modulePath + "/gateway", modulePath + "/cmd"}
	pkgs := goList(t, nil, "-deps", "./policy")
	if !slicesContainPath(pkgs, "gopkg.in/yaml.v3") {
		t.Fatalf("go list -deps ./policy does not list gopkg.in/yaml.v3: the check would be vacuous")
	}
	for _, p := range pkgs {
		for _, b := range banned {
			if p.ImportPath == strings.TrimSuffix(b, "/") || strings.HasPrefix(p.ImportPath, b) {
				t.Errorf("policy depends on %s", p.ImportPath)
			}
		}
		if !p.Standard && len(p.CgoFiles) > 0 {
			t.Errorf("policy dependency %s needs cgo (%v)", p.ImportPath, p.CgoFiles)
		}
	}
	cmd := exec.Command("go", "build", "-o", os.DevNull, "./policy")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("policy does not build without cgo: %v\n%s", err, out)
	}
}

// TestModuleImportDirection: imports flow cmd -> gateway -> (policy,
// sandbox), sandbox -> policy. Nothing outside cmd/ and gateway/ imports
// gateway; sandbox never depends on gateway; policy on neither.
func TestModuleImportDirection(t *testing.T) {
	pkgs := goList(t, nil, "-deps", "./...")
	for _, want := range []string{modulePath + "/policy", modulePath + "/sandbox", modulePath + "/gateway"} {
		if !slicesContainPath(pkgs, want) {
			t.Fatalf("go list ./... does not list %s: the check would be vacuous", want)
		}
	}
	for _, p := range pkgs {
		if !strings.HasPrefix(p.ImportPath, modulePath+"/") {
			continue
		}
		all := append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
		for _, imp := range all {
			if inTree(imp, "gateway") && !inTree(p.ImportPath, "cmd") && !inTree(p.ImportPath, "gateway") {
				t.Errorf("%s imports %s: only cmd/... may import gateway", p.ImportPath, imp)
			}
			if inTree(p.ImportPath, "policy") && (inTree(imp, "sandbox") || inTree(imp, "gateway")) {
				t.Errorf("%s imports %s: policy imports neither sandbox nor gateway", p.ImportPath, imp)
			}
		}
		if inTree(p.ImportPath, "sandbox") {
			for _, dep := range p.Deps {
				if inTree(dep, "gateway") {
					t.Errorf("%s depends on %s: sandbox never imports gateway", p.ImportPath, dep)
				}
			}
		}
	}
}

func slicesContainPath(pkgs []listedPackage, path string) bool {
	for _, p := range pkgs {
		if p.ImportPath == path {
			return true
		}
	}
	return false
}
