package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxFileBytes bounds one policy file; a larger file is a load error.
const maxFileBytes = 4 << 20

// LoadOptions tune loading.
type LoadOptions struct {
	// SkipBinaryCheck skips checking that each command's binary exists on
	// the host and matches its sha256 pin. For tests of fixtures only: a
	// gateway never sets it.
	SkipBinaryCheck bool
	// StateDir is the gateway's own state directory; a root over it is a
	// load error.
	StateDir string
	// WithoutSecrets loads the set without reading any secrets_file: the
	// copy the unprivileged front holds to answer decisions. Secret
	// variables keep their names but carry no value, so such a set must
	// never be used to run a command (the root executor loads its own,
	// complete set and decides again). Default false.
	WithoutSecrets bool
	// CheckSeccompFile, when set, validates the content of each custom
	// seccomp profile file a profile names. The loader reads every such
	// file once (ReadSeccompFile: no symbolic links, root-owned, not
	// writable by others, world-readable, at most MaxSeccompFileBytes) and
	// the compiled profile carries those bytes (Profile.SeccompData): what
	// the hook validated is what the sandbox compiles. An error becomes a
	// bad_seccomp load error at the profile's seccomp key; it must not
	// quote the content beyond a (short, escaped) syscall name. The
	// command line sets it to sandbox.CheckSeccompProfile (libseccomp's
	// syscall table, the forbidden list, what the sandbox's PID 1 needs):
	// policy itself never links libseccomp. Nil: the file is read and its
	// ownership and mode checked, its content is not validated.
	CheckSeccompFile func(data []byte) error
}

// parsedFile is one decoded policy file with the position of every key.
type parsedFile struct {
	name string
	f    *File
	pos  map[string]Pos
}

// at returns the position of a dotted path, or of its nearest recorded
// ancestor, or 1:1.
func (pf *parsedFile) at(path string) Pos {
	for path != "" {
		if p, ok := pf.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return Pos{1, 1}
}

// Load reads policy files and directories (their *.yaml and *.yml files, in
// lexical order), validates them as one set and compiles it. The error is an
// ErrorList (every problem, sorted) or a wrapped I/O error.
func Load(ctx context.Context, paths []string, opts LoadOptions) (*Set, error) {
	files, err := expandPaths(paths)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("load policy %s: %w", strings.Join(paths, ", "), ErrNoFiles)
	}
	names := make([]string, 0, len(files))
	datas := make([][]byte, 0, len(files))
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load policy: %w", err)
		}
		data, err := readPolicyFile(name)
		if err != nil {
			return nil, err
		}
		names = append(names, name)
		datas = append(datas, data)
	}
	return loadAll(names, datas, opts)
}

// LoadBytes loads one policy file held in memory; name is used in errors
// and rule references.
func LoadBytes(name string, data []byte, opts LoadOptions) (*Set, error) {
	return loadAll([]string{name}, [][]byte{data}, opts)
}

func expandPaths(paths []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if c := filepath.Clean(p); !seen[c] {
			seen[c] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("load policy %s: %w", p, err)
		}
		if !st.IsDir() {
			add(p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("load policy dir %s: %w", p, err)
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			add(filepath.Join(p, n))
		}
	}
	return out, nil
}

func readPolicyFile(name string) ([]byte, error) {
	f, _, err := openRegular(name, 0)
	if err != nil {
		return nil, fmt.Errorf("load policy %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %s: %w", name, err)
	}
	return data, nil
}

// loadAll parses, validates and compiles a set of files.
func loadAll(names []string, datas [][]byte, opts LoadOptions) (*Set, error) {
	var errs ErrorList
	files := make([]*parsedFile, 0, len(names))
	for i, name := range names {
		if pf := parseFile(name, datas[i], &errs); pf != nil {
			files = append(files, pf)
		}
	}
	// Validation runs even after decoding errors (so every error is
	// reported at once), but only when every file could be decoded at all:
	// a missing file would make its names look undeclared everywhere.
	if len(files) < len(names) {
		errs.Sort()
		return nil, errs
	}
	l := newLoader(files, opts)
	l.validate()
	errs = append(errs, l.errs...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return l.compile(), nil
}

var yamlLineRE = newLazyRegexp(`line (\d+)`)

// parseFile decodes one file into the model; it returns nil when the file
// cannot be used at all (syntax error, no or bad version).
func parseFile(name string, data []byte, errs *ErrorList) *parsedFile {
	fail := func(line, col int, code, msg string) *parsedFile {
		*errs = append(*errs, &Error{File: name, Line: line, Col: col, Code: code, Message: msg})
		return nil
	}
	if len(data) > maxFileBytes {
		return fail(1, 1, CodeSyntax, fmt.Sprintf("file larger than %d bytes", maxFileBytes))
	}
	docs, err := splitDocuments(data)
	if err != nil {
		line := 1
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return fail(line, 1, CodeSyntax, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 {
		return fail(1, 1, CodeMissingVersion, "empty file: \"version: 1\" is required")
	}
	if len(docs) > 1 {
		return fail(docs[1].Line, docs[1].Column, CodeSyntax, "one YAML document per policy file")
	}
	root := docs[0].Content[0]
	pf := &parsedFile{name: name, f: &File{}, pos: map[string]Pos{}}
	d := &nodeDecoder{file: name, errs: errs, pos: pf.pos}
	d.decode(root, reflectValue(pf.f), "")
	if root.Kind != yaml.MappingNode {
		return nil
	}
	if _, ok := pf.pos["version"]; !ok {
		return fail(root.Line, root.Column, CodeMissingVersion, "\"version: 1\" is required")
	}
	if pf.f.Version != 1 {
		p := pf.at("version")
		return fail(p.Line, p.Col, CodeBadVersion, fmt.Sprintf("unsupported version %d (want 1)", pf.f.Version))
	}
	return pf
}

func splitDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
}
