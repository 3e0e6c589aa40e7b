package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// envRef matches ${NAME}: upper-case letters, digits and underscores, so that
// regexp replacements such as ${1} and JSONPath's $ are left alone. $${NAME}
// writes a literal ${NAME}.
var envRef = regexp.MustCompile(`\$?\$\{([A-Z_][A-Z0-9_]*)\}`)

// expandEnv replaces ${NAME} in every string of cfg with the environment
// variable's value, so secrets stay out of the file. It works on decoded
// values, not on the text, so line and column numbers stay those of the
// file. It returns the substituted values (to mask them when printing).
func (c *compiler) expandEnv(cfg *Config, lookup func(string) (string, bool)) []string {
	var secrets []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				f := t.Field(i)
				tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || tag == "" || tag == "-" {
					continue
				}
				walk(v.Field(i), path+"."+tag)
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.String:
			s := v.String()
			if !strings.Contains(s, "${") {
				return
			}
			out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
				if strings.HasPrefix(ref, "$$") {
					return ref[1:]
				}
				name := ref[2 : len(ref)-1]
				val, ok := lookup(name)
				if !ok {
					// Every variable of the value is named, past the
					// first that marks it unexpanded (fail would drop it).
					c.problems = append(c.problems, c.loc.problem(path, "export it before starting cutover, or write $${"+name+"} for a literal", "environment variable %s is not set", name))
					if c.unexpanded == nil {
						c.unexpanded = map[string]bool{}
					}
					c.unexpanded[path] = true
					return ref
				}
				if val != "" {
					secrets = append(secrets, val)
				}
				return val
			})
			if v.CanSet() {
				v.SetString(out)
			}
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "$")
	return secrets
}
