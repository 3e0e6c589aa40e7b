package rules

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/theory/jsonpath"
	"golang.org/x/crypto/bcrypt"
)

// AuthConfig protects the admin listener. With nothing set the admin listener
// must stay on loopback.
type AuthConfig struct {
	// TokenFile and TokenEnv give the bearer token that may read everything
	// (dashboard, API, metrics).
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// OperatorTokenFile and OperatorTokenEnv give the token that may also
	// act (replay a given-up write, reset statistics).
	OperatorTokenFile string `yaml:"operator_token_file"`
	OperatorTokenEnv  string `yaml:"operator_token_env"`
	// Basic lists users for HTTP basic auth, with bcrypt password hashes.
	Basic []BasicUserConfig `yaml:"basic"`
	// ProbesOpen lets /healthz and /readyz answer without credentials, for
	// load balancers and kubelets (default true).
	ProbesOpen *bool `yaml:"probes_open"`
}

// BasicUserConfig is one basic-auth user.
type BasicUserConfig struct {
	User         string `yaml:"user"`
	PasswordHash string `yaml:"password_hash"`
	// Role is viewer (read only, the default) or operator.
	Role string `yaml:"role"`
}

// RedactConfig names what must never be stored, logged or shown in clear,
// beyond the headers that are always redacted (Authorization,
// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key).
type RedactConfig struct {
	Headers []string `yaml:"headers"`
	// Paths are JSONPath expressions whose values are redacted in bodies.
	Paths []string `yaml:"paths"`
	// Query names query parameters whose values are redacted in stored and
	// logged request targets.
	Query []string `yaml:"query"`
	// Unredact narrows the default header list. Every name here is logged as
	// a warning at start: it is for the rare header known to be harmless.
	Unredact []string `yaml:"unredact"`
	// KeyFile holds the key of the hash that replaces redacted values; unset,
	// a random key per process is used.
	KeyFile string `yaml:"key_file"`
}

// Auth is the compiled admin.auth section.
type Auth struct {
	TokenFile, TokenEnv                 string
	OperatorTokenFile, OperatorTokenEnv string
	Basic                               []BasicUser
	ProbesOpen                          bool
}

// BasicUser is one compiled basic-auth user.
type BasicUser struct {
	User     string
	Hash     []byte
	Operator bool
}

// Enabled reports whether any credential is configured.
func (a Auth) Enabled() bool {
	return a.TokenFile != "" || a.TokenEnv != "" || a.OperatorTokenFile != "" || a.OperatorTokenEnv != "" || len(a.Basic) > 0
}

// Redact is the compiled redact section.
type Redact struct {
	Headers, Paths, Query, Unredact []string
	KeyFile                         string
}

func (c *compiler) auth(ac AuthConfig) Auth {
	a := Auth{
		TokenFile: ac.TokenFile, TokenEnv: ac.TokenEnv,
		OperatorTokenFile: ac.OperatorTokenFile, OperatorTokenEnv: ac.OperatorTokenEnv,
		ProbesOpen: ac.ProbesOpen == nil || *ac.ProbesOpen,
	}
	seen := map[string]bool{}
	for i, u := range ac.Basic {
		path := fmt.Sprintf("$.admin.auth.basic[%d]", i)
		if u.User == "" || strings.Contains(u.User, ":") {
			c.fail(path+".user", "a user name may not be empty or contain ':'", "bad basic-auth user %q", u.User)
		}
		if seen[u.User] {
			c.fail(path+".user", "", "basic-auth user %q appears twice", u.User)
		}
		seen[u.User] = true
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			c.fail(path+".password_hash", "make one with: htpasswd -nbBC 12 USER PASSWORD (keep the part after the colon)", "password_hash is not a bcrypt hash")
		}
		role := or(u.Role, "viewer")
		if role != "viewer" && role != "operator" {
			c.fail(path+".role", "use viewer or operator", "unknown role %q", u.Role)
		}
		a.Basic = append(a.Basic, BasicUser{User: u.User, Hash: []byte(u.PasswordHash), Operator: role == "operator"})
	}
	return a
}

func (c *compiler) trustedProxies(cidrs []string) []netip.Prefix {
	var out []netip.Prefix
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			if a, aerr := netip.ParseAddr(strings.TrimSpace(s)); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				c.fail(fmt.Sprintf("$.server.trusted_proxies[%d]", i), "write a network like 10.0.0.0/8 or an address", "%q is not a CIDR", s)
				continue
			}
		}
		out = append(out, p.Masked())
	}
	return out
}

func (c *compiler) redact(rc RedactConfig) Redact {
	for i, p := range rc.Paths {
		if _, err := jsonpath.Parse(p); err != nil {
			c.fail(fmt.Sprintf("$.redact.paths[%d]", i), "write an RFC 9535 JSONPath like $..password", "%v", err)
		}
	}
	return Redact{Headers: rc.Headers, Paths: rc.Paths, Query: rc.Query, Unredact: rc.Unredact, KeyFile: rc.KeyFile}
}

// RedactQuery replaces the values of the named query parameters in a request
// target ("/path?token=abc") with ****, leaving the rest byte for byte.
func RedactQuery(target string, names []string) string {
	path, query, ok := strings.Cut(target, "?")
	if !ok || len(names) == 0 {
		return target
	}
	parts := strings.Split(query, "&")
	changed := false
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		if !hasValue {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		for _, n := range names {
			if strings.EqualFold(name, n) {
				parts[i] = k + "=****"
				changed = true
				break
			}
		}
	}
	if !changed {
		return target
	}
	return path + "?" + strings.Join(parts, "&")
}

// RedactTarget applies the configured query redaction to a request target,
// for logs and stored samples.
func (s *Set) RedactTarget(target string) string { return RedactQuery(target, s.Redact.Query) }
