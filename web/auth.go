package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Role is what a caller may do on the admin surface.
type Role int

// The roles, each allowing what the one before allows.
const (
	RoleNone     Role = iota // no valid credentials
	RoleViewer               // read the dashboard, the API and the metrics
	RoleOperator             // also act: replay a given-up write, reset statistics
)

// Credentials say who may use the admin surface. Tokens are kept as SHA-256
// digests and compared in constant time; basic-auth passwords as bcrypt
// hashes.
type Credentials struct {
	viewer, operator [][sha256.Size]byte
	basic            map[string]basicUser

	// verified caches successful basic-auth checks (bcrypt costs tens of
	// milliseconds, and the dashboard polls), keyed by a digest of the
	// credentials, never the password itself.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]verified
	now      func() time.Time

	// dummy is compared against when the user does not exist, so an
	// unknown user takes as long as a wrong password.
	dummy []byte
}

type basicUser struct {
	hash     []byte
	operator bool
}

type verified struct {
	role  Role
	until time.Time
}

// verifiedTTL bounds how long a password stays accepted without a new
// bcrypt check, and maxVerified how many are remembered.
const (
	verifiedTTL = 5 * time.Minute
	maxVerified = 1024
)

// NewCredentials builds credentials from tokens and basic-auth users
// (name → bcrypt hash and whether the user is an operator).
func NewCredentials(viewerTokens, operatorTokens []string, basic map[string]BasicUser) *Credentials {
	c := &Credentials{basic: map[string]basicUser{}, verified: map[[sha256.Size]byte]verified{}, now: time.Now}
	for _, t := range viewerTokens {
		c.viewer = append(c.viewer, sha256.Sum256([]byte(t)))
	}
	for _, t := range operatorTokens {
		c.operator = append(c.operator, sha256.Sum256([]byte(t)))
	}
	cost := bcrypt.DefaultCost
	for name, u := range basic {
		c.basic[name] = basicUser{hash: u.Hash, operator: u.Operator}
		if n, err := bcrypt.Cost(u.Hash); err == nil && n > cost {
			cost = n
		}
	}
	if len(basic) > 0 {
		var random [16]byte
		rand.Read(random[:])
		c.dummy, _ = bcrypt.GenerateFromPassword(random[:8], cost)
	}
	return c
}

// BasicUser is one basic-auth user for NewCredentials.
type BasicUser struct {
	Hash     []byte
	Operator bool
}

// Authenticate returns the caller's role and a name for the audit log.
func (c *Credentials) Authenticate(r *http.Request) (Role, string) {
	auth := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return c.token(strings.TrimSpace(token)), "token"
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return RoleNone, ""
	}
	// A token also works as the password of any user name, so a browser can
	// open the dashboard with only a token.
	if role := c.token(pass); role != RoleNone {
		return role, "token"
	}
	return c.password(user, pass), user
}

// token checks t against every configured token, always all of them, so the
// time taken says nothing about which one (or how much of one) matched.
func (c *Credentials) token(t string) Role {
	if t == "" {
		return RoleNone
	}
	d := sha256.Sum256([]byte(t))
	role := RoleNone
	for _, v := range c.viewer {
		if subtle.ConstantTimeCompare(d[:], v[:]) == 1 {
			role = max(role, RoleViewer)
		}
	}
	for _, o := range c.operator {
		if subtle.ConstantTimeCompare(d[:], o[:]) == 1 {
			role = RoleOperator
		}
	}
	return role
}

func (c *Credentials) password(user, pass string) Role {
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	now := c.now()
	c.mu.Lock()
	v, ok := c.verified[key]
	c.mu.Unlock()
	if ok && now.Before(v.until) {
		return v.role
	}
	u, known := c.basic[user]
	hash := u.hash
	if !known {
		if c.dummy == nil {
			return RoleNone
		}
		hash = c.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known {
		return RoleNone
	}
	role := RoleViewer
	if u.operator {
		role = RoleOperator
	}
	c.mu.Lock()
	if len(c.verified) >= maxVerified {
		clear(c.verified)
	}
	c.verified[key] = verified{role: role, until: now.Add(verifiedTTL)}
	c.mu.Unlock()
	return role
}

// requireRole lets through requests whose credentials give at least want;
// others get 401 (no or bad credentials) or 403 (too little).
func (h *handler) requireRole(want Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if h.o.Auth == nil {
				next.ServeHTTP(w, r)
				return
			}
			role, _ := h.o.Auth.Authenticate(r)
			switch {
			case role == RoleNone:
				w.Header().Add("WWW-Authenticate", `Basic realm="cutover", charset="UTF-8"`)
				w.Header().Add("WWW-Authenticate", `Bearer realm="cutover"`)
				h.error(w, r, http.StatusUnauthorized, "credentials required: a bearer token, or basic auth")
			case role < want:
				h.error(w, r, http.StatusForbidden, "these credentials may not do this; an operator's may")
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
