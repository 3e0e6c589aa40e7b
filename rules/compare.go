package rules

import "github.com/cutover/cutover/compare"

// CompareConfig is a compare: section, in defaults or in a route.
// TEMPORARY: a minimal placeholder until the rules language lands.
type CompareConfig struct {
	Inherit        *bool    `yaml:"inherit"`
	Ignore         []string `yaml:"ignore"`
	IgnoreHeaders  []string `yaml:"ignore_headers"`
	CompareHeaders []string `yaml:"compare_headers"`
	Unordered      []string `yaml:"unordered"`
}

// compare compiles a route's compare section on top of the defaults' (def
// is nil when compiling the defaults themselves).
func (c *compiler) compare(path string, def, own *CompareConfig) *compare.Options {
	o := &compare.Options{}
	if def != nil && (own.Inherit == nil || *own.Inherit) {
		o.IgnoreHeaders = append(o.IgnoreHeaders, def.IgnoreHeaders...)
		o.CompareHeaders = append(o.CompareHeaders, def.CompareHeaders...)
	}
	o.IgnoreHeaders = append(o.IgnoreHeaders, own.IgnoreHeaders...)
	o.CompareHeaders = append(o.CompareHeaders, own.CompareHeaders...)
	return o
}
