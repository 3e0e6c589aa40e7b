package rules

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxConfigBytes bounds a configuration file: rules are small, and a file of
// megabytes is a mistake (or an attack on the YAML parser).
const MaxConfigBytes = 4 << 20

// LoadFile reads, validates and compiles the configuration at path. A file
// that does not exist is an error that wraps fs.ErrNotExist, for the command
// to say how its file is given.
func LoadFile(path string) (*Set, error) {
	src, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, bytes.NewReader(src))
}

// Parse validates and compiles a configuration read from r; name is used in
// messages (file:line:col). A configuration with problems returns them all as
// [Problems], never a partial Set.
func Parse(name string, r io.Reader) (*Set, error) {
	src, err := io.ReadAll(io.LimitReader(r, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(src) > MaxConfigBytes {
		return nil, Problems{{File: name, Msg: fmt.Sprintf("the configuration is larger than %d bytes", MaxConfigBytes), Hint: "split generated rules or remove unused ones"}}
	}
	cfg, loc, err := decode(name, src)
	if err != nil {
		return nil, err
	}
	set, err := compile(cfg, loc)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(src)
	set.Version = hex.EncodeToString(sum[:6])
	set.Source = name
	set.Loaded = time.Now().UTC() // as the admin API shows times
	return set, nil
}

// decode parses src strictly: unknown keys and wrong types are problems with
// their position.
func decode(name string, src []byte) (cfg *Config, loc *locator, err error) {
	defer func() {
		// goccy/go-yaml v1.19.2 panics on some malformed files (a tag on
		// an empty sequence: "ignore: !x" then garbage; found by
		// FuzzParse). A bad file must be a problem, never a crash of the
		// gateway on reload.
		if p := recover(); p != nil {
			cfg, loc, err = nil, nil, Problems{{File: name, Msg: fmt.Sprintf("the YAML decoder failed: %v", p), Hint: "check the file's YAML syntax near tags (!) and sequences"}}
		}
	}()
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, nil, yamlProblem(name, err)
	}
	cfg = new(Config)
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, nil, Problems{{File: name, Line: 1, Col: 1, Msg: "the configuration is empty", Hint: "start from the example in README.md"}}
	}
	// The decoder reads the first document only: routes after a "---"
	// would be dropped without a word.
	var docs []*ast.DocumentNode
	for _, doc := range file.Docs {
		if doc.Body != nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) > 1 {
		at := docs[1].Body.GetToken()
		if docs[1].Start != nil {
			at = docs[1].Start // its "---"
		}
		pos := at.Position
		return nil, nil, Problems{{File: name, Line: pos.Line, Col: pos.Column, Msg: "a second YAML document (after ---): cutover reads one",
			Hint: "put everything in one document, or split the file"}}
	}
	if ps := shapeProblems(name, file); len(ps) > 0 {
		return nil, nil, ps
	}
	dec := yaml.NewDecoder(bytes.NewReader(src), yaml.Strict())
	if err := dec.Decode(cfg); err != nil {
		return nil, nil, yamlProblem(name, err)
	}
	return cfg, newLocator(name, file), nil
}

func yamlProblem(name string, err error) error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		p := &Problem{File: name, Msg: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			p.Line, p.Col = tk.Position.Line, tk.Position.Column
		}
		p.Msg, p.Hint = explainYAML(p.Msg)
		return Problems{p}
	}
	return Problems{{File: name, Msg: err.Error()}}
}

// explainYAML turns the decoder's wording into what a user of this file needs.
func explainYAML(msg string) (string, string) {
	switch {
	case strings.HasPrefix(msg, "unknown field"):
		return msg, "check the spelling against the configuration reference in README.md"
	case strings.Contains(msg, "cannot unmarshal"):
		return msg, "the value has the wrong type for this key"
	case strings.Contains(msg, "found character '\t'"):
		return msg, "YAML is indented with spaces: replace the tabs"
	case strings.Contains(msg, "already defined"):
		return msg, "a key appears once in a mapping: merge the two"
	case strings.Contains(msg, "mapping value is not allowed"):
		return msg, "check the indentation above this line, and quote a value that holds \": \""
	}
	return msg, ""
}

// locator finds the line and column of a value by its YAML path
// ("$.routes[0].phase"), so problems found after decoding still point into
// the file.
type locator struct {
	name string
	pos  map[string][2]int
}

func newLocator(name string, file *ast.File) *locator {
	l := &locator{name: name, pos: make(map[string][2]int)}
	for _, doc := range file.Docs {
		if doc.Body != nil {
			ast.Walk(l, doc.Body)
		}
	}
	return l
}

// Visit records the position of every node; it implements ast.Visitor.
func (l *locator) Visit(n ast.Node) ast.Visitor {
	if mv, ok := n.(*ast.MappingValueNode); ok {
		// Point at the value, but fall back to the key for empty values.
		if tk := mv.Value.GetToken(); tk != nil && tk.Position != nil {
			l.add(mv.Value.GetPath(), tk.Position.Line, tk.Position.Column)
		}
		return l
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		l.add(n.GetPath(), tk.Position.Line, tk.Position.Column)
	}
	return l
}

func (l *locator) add(path string, line, col int) {
	if path == "" {
		return
	}
	if _, seen := l.pos[path]; !seen {
		l.pos[path] = [2]int{line, col}
	}
}

// problem builds a Problem at path, or at the nearest enclosing node the file
// has (a default that was never written has no place of its own).
func (l *locator) problem(path, hint, format string, args ...any) *Problem {
	p := &Problem{File: l.name, Msg: fmt.Sprintf(format, args...), Hint: hint}
	for q := path; q != ""; q = parentPath(q) {
		if at, ok := l.pos[q]; ok {
			p.Line, p.Col = at[0], at[1]
			break
		}
	}
	return p
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 1 {
		return ""
	}
	return p[:i]
}
