package policy

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a policy file (1-based).
type Pos struct {
	Line int
	Col  int
}

// nodeDecoder decodes a yaml.Node tree into the file model strictly: every
// unknown key, duplicate key, alias or type mismatch becomes an Error with
// its position, and decoding goes on so that all errors are reported at once.
// It records the position of every key and element by dotted path
// ("commands.git.flags[0].names") so later checks can point at them.
type nodeDecoder struct {
	file string
	errs *ErrorList
	pos  map[string]Pos
}

// scalarDecoder is implemented by scalar types with their own syntax.
type scalarDecoder interface {
	decodeScalar(n *yaml.Node) error
}

func (d *nodeDecoder) fail(n *yaml.Node, code, format string, args ...any) {
	*d.errs = append(*d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column,
		Code: code, Message: fmt.Sprintf(format, args...)})
}

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		d.fail(n, CodeAlias, "YAML anchors and aliases are not allowed in policy files")
		return
	}
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") || n.Tag == "!!binary" {
		d.fail(n, CodeType, "%s: YAML tag %s is not allowed in policy files", pathOr(path), n.Tag)
		return
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			return
		}
		// A scalar that fails to decode stays unset, so later checks do
		// not report a zero value the file never wrote; a mapping keeps
		// what did decode.
		before := len(*d.errs)
		nv := reflect.New(v.Type().Elem())
		d.decode(n, nv.Elem(), path)
		k := nv.Elem().Kind()
		if len(*d.errs) == before || k == reflect.Struct || k == reflect.Map || k == reflect.Slice {
			v.Set(nv)
		}
		return
	}
	if sd, ok := v.Addr().Interface().(scalarDecoder); ok {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			d.fail(n, CodeType, "%s: expected a scalar, got %s", path, kindName(n))
			return
		}
		if err := sd.decodeScalar(n); err != nil {
			d.fail(n, CodeBadValue, "%s: %v", path, err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// structField is one YAML key of a struct (inline structs flattened).
type structField struct {
	index    []int
	required bool
}

// fieldCache memoizes structFields per type.
var fieldCache sync.Map // reflect.Type -> *cachedFields

type cachedFields struct {
	fields map[string]structField
	names  []string
}

func structFields(t reflect.Type) (map[string]structField, []string) {
	if c, ok := fieldCache.Load(t); ok {
		cf := c.(*cachedFields)
		return cf.fields, cf.names
	}
	fields, names := buildStructFields(t)
	fieldCache.Store(t, &cachedFields{fields, names})
	return fields, names
}

func buildStructFields(t reflect.Type) (map[string]structField, []string) {
	fields := map[string]structField{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int{}, prefix...), i)
			if strings.Contains(opts, "inline") {
				walk(f.Type, idx)
				continue
			}
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			req := hasTagOption(f.Tag.Get("jsonschema"), "required")
			fields[name] = structField{index: idx, required: req}
		}
	}
	walk(t, nil)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return fields, names
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mappingPairs checks a mapping node and yields its key/value pairs with
// duplicate and merge-key checks done.
func (d *nodeDecoder) mappingPairs(n *yaml.Node, path string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.fail(n, CodeType, "%s: expected a mapping, got %s", pathOr(path), kindName(n))
		return nil
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" || k.Value == "<<" {
			d.fail(k, CodeAlias, "%s: only plain keys are allowed (no merge keys or complex keys)", pathOr(path))
			continue
		}
		if seen[k.Value] {
			d.fail(k, CodeDuplicateKey, "%s: duplicate key %q", pathOr(path), k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, val})
	}
	return out
}

func pathOr(p string) string {
	if p == "" {
		return "document"
	}
	return p
}

func (d *nodeDecoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields, names := structFields(v.Type())
	pairs := d.mappingPairs(n, path)
	if n.Kind != yaml.MappingNode {
		return
	}
	got := map[string]bool{}
	for _, kv := range pairs {
		k := kv[0]
		f, ok := fields[k.Value]
		if !ok {
			d.fail(k, CodeUnknownKey, "%s: unknown key %q%s", pathOr(path), k.Value, didYouMean(k.Value, names))
			continue
		}
		got[k.Value] = true
		p := joinPath(path, k.Value)
		d.pos[p] = Pos{k.Line, k.Column}
		d.decode(kv[1], v.FieldByIndex(f.index), p)
	}
	for _, name := range names {
		if fields[name].required && !got[name] {
			d.fail(n, CodeRequired, "%s: missing required key %q", pathOr(path), name)
		}
	}
}

func (d *nodeDecoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	pairs := d.mappingPairs(n, path)
	if n.Kind != yaml.MappingNode {
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, kv := range pairs {
		k := kv[0]
		p := joinPath(path, k.Value)
		d.pos[p] = Pos{k.Line, k.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(kv[1], elem, p)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

func (d *nodeDecoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, CodeType, "%s: expected a sequence, got %s", path, kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.pos[p] = Pos{c.Line, c.Column}
		d.decode(c, s.Index(i), p)
	}
	v.Set(s)
}

func (d *nodeDecoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		d.fail(n, CodeType, "%s: expected a scalar, got %s", path, kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.fail(n, CodeType, "%s: expected true or false, got %q", path, n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int, reflect.Int64, reflect.Int32:
		x, err := strconv.ParseInt(n.Value, 10, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.fail(n, CodeType, "%s: expected a decimal integer, got %q", path, n.Value)
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		x, err := strconv.ParseUint(n.Value, 10, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			d.fail(n, CodeType, "%s: expected a non-negative decimal integer, got %q", path, n.Value)
			return
		}
		v.SetUint(x)
	case reflect.Float64:
		x, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.fail(n, CodeType, "%s: expected a number, got %q", path, n.Value)
			return
		}
		v.SetFloat(x)
	default:
		d.fail(n, CodeType, "%s: unsupported field type %s", path, v.Type())
	}
}

func (s *Size) decodeScalar(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	*s = v
	return err
}

func (dd *Duration) decodeScalar(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	*dd = v
	return err
}

func (u *Umask) decodeScalar(n *yaml.Node) error {
	v, err := ParseUmask(n.Value)
	*u = v
	return err
}

// didYouMean suggests the closest known key, if one is close enough.
func didYouMean(key string, names []string) string {
	best, bestD := "", 1<<30
	for _, n := range names {
		if d := EditDistance(key, n, math.MaxInt); d < bestD {
			best, bestD = n, d
		}
	}
	limit := len(key) / 3
	if limit < 2 {
		limit = 2
	}
	if best == "" || bestD > limit {
		return fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

// hasTagOption reports whether a comma-separated struct tag has opt.
func hasTagOption(tag, opt string) bool {
	for _, p := range strings.Split(tag, ",") {
		if p == opt {
			return true
		}
	}
	return false
}
