package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"
)

// credential is one configured login: an API key id or a username.
type credential struct {
	hash    []byte
	subject string
	roles   []string
}

// credentials holds the logins of POST /auth/token.
type credentials struct {
	users   map[string]credential
	apiKeys map[string]credential
	dummy   []byte // compared against for unknown users, so timing tells nothing
}

func newCredentials(cfg AuthConfig) (*credentials, error) {
	cr := &credentials{users: map[string]credential{}, apiKeys: map[string]credential{}}
	cost := bcrypt.MinCost // the dummy hash matches the costliest configured one
	add := func(m map[string]credential, key, id, hash, sub string, roles []string) error {
		if !ValidSubject(id) || !ValidSubject(sub) {
			return &ConfigError{Key: key, Message: fmt.Sprintf("%q: name and subject must match %s", id, subjectRe)}
		}
		if _, dup := m[id]; dup {
			return &ConfigError{Key: key, Message: fmt.Sprintf("%q appears twice", id)}
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return &ConfigError{Key: key, Message: fmt.Sprintf("%q: not a bcrypt hash", id)}
		}
		cost = max(cost, c)
		for _, r := range roles {
			if !roleRe.MatchString(r) {
				return &ConfigError{Key: key, Message: fmt.Sprintf("%q: role %q must match %s", id, r, roleRe)}
			}
		}
		m[id] = credential{hash: []byte(hash), subject: sub, roles: roles}
		return nil
	}
	for _, u := range cfg.Users {
		if err := add(cr.users, "auth.users", u.Username, u.PasswordHash, u.Username, u.Roles); err != nil {
			return nil, err
		}
	}
	for _, k := range cfg.APIKeys {
		if err := add(cr.apiKeys, "auth.api_keys", k.ID, k.SecretHash, k.Subject, k.Roles); err != nil {
			return nil, err
		}
	}
	if len(cr.users)+len(cr.apiKeys) > 0 {
		d, err := bcrypt.GenerateFromPassword([]byte("execgate-dummy-password"), cost)
		if err != nil {
			return nil, fmt.Errorf("dummy hash: %w", err)
		}
		cr.dummy = d
	}
	return cr, nil
}

// tokenRequest is the body of POST /auth/token: username+password or api_key.
type tokenRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	APIKey   string `json:"api_key"`
}

// login returns the name the attempt is counted under and the method.
func (r tokenRequest) login() (name, method string, err error) {
	switch {
	case r.APIKey != "" && r.Username == "" && r.Password == "":
		// Without its "id." prefix the key is the bare secret: never a name.
		id, _, ok := strings.Cut(r.APIKey, ".")
		if !ok || !ValidSubject(id) {
			id = "malformed"
		}
		return "apikey:" + id, "api_key", nil
	case r.APIKey == "" && r.Username != "" && r.Password != "":
		return truncate(r.Username, 128), "password", nil
	}
	return "", "", errInvalid("", "send username and password, or api_key", errors.New("bad credential shape"))
}

// verify checks the attempt; unknown names are compared against a dummy
// hash so that the answer and its timing do not tell whether they exist.
func (cr *credentials) verify(r tokenRequest) (credential, bool) {
	var c credential
	var found bool
	var secret string
	if r.APIKey != "" {
		id, sec, ok := strings.Cut(r.APIKey, ".")
		c, found = cr.apiKeys[id]
		found = found && ok
		secret = sec
	} else {
		c, found = cr.users[r.Username]
		secret = r.Password
	}
	hash := cr.dummy
	if found {
		hash = c.hash
	}
	if hash == nil || len(secret) > 72 {
		return credential{}, false
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(secret)) == nil
	return c, ok && found
}

// knownName is name when it names a configured login, else "unknown:" and
// a hash of it: a password typed into the username field must never reach
// the audit log, the access log or a limiter key, yet the attempts on one
// unknown name still count together.
func (cr *credentials) knownName(name, method string) string {
	known := false
	if method == "api_key" {
		_, known = cr.apiKeys[strings.TrimPrefix(name, "apikey:")]
	} else {
		_, known = cr.users[name]
	}
	if known {
		return name
	}
	sum := sha256.Sum256([]byte(method + "\x00" + name))
	return "unknown:" + hex.EncodeToString(sum[:8])
}

// tokenResponse is the answer of POST /auth/token.
type tokenResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresIn   int64     `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s *Server) handleToken(c *gin.Context) error {
	if s.signer == nil || s.creds.dummy == nil {
		return httpErr(http.StatusNotFound, CodeNotFound, "token exchange is not configured", errors.New("no signing key or no credentials"))
	}
	var req tokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return s.badTokenRequest(c, err)
	}
	name, method, err := req.login()
	if err != nil {
		return s.badTokenRequest(c, err)
	}
	name = s.creds.knownName(name, method)
	ctx, ip := c.Request.Context(), clientIP(c)
	ev := s.event(c, EventAuthFailure)
	ev.Subject, ev.AuthMethod = name, method
	if wait, err := s.lockouts.locked(ctx, name, ip); err != nil {
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "try again later", err)
	} else if wait > 0 {
		ev.Reason = CodeLockedOut
		_ = s.audit.Record(ctx, ev)
		s.metrics.Limited("lockout")
		e := httpErr(http.StatusTooManyRequests, CodeLockedOut, "too many failed attempts, retry later", ErrLockedOut)
		e.RetryAfter = wait
		return e
	}
	release, err := s.loginSlot(ctx)
	if err != nil {
		ev.Reason = CodeRateLimited
		_ = s.audit.Record(ctx, ev) // refused either way
		return err
	}
	defer release()
	if err := s.lockouts.reserve(ctx, name, ip); err != nil {
		if e, ok := s.storeFull(c, "lockout", err); ok {
			return e // no room to count a failure: not checked at all
		}
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "try again later", err)
	}
	cred, ok := s.creds.verify(req)
	if !ok {
		return s.loginFailed(c, ev, name, ip)
	}
	s.lockouts.succeeded(ctx, name, ip)
	// The per-user limit counts the tokens a user is issued, so it is taken
	// only once the credentials are right: failed attempts are counted per
	// user+IP and per IP (the lockouts above), never against the user
	// alone, or a few addresses guessing wrong would deny the user every
	// login from anywhere.
	if err := s.take(c, s.limits.authUser, "user", "auth:user:"+name); err != nil {
		return err
	}
	tok, exp, err := s.signer.Sign(cred.subject, cred.roles, s.cfg.Auth.TokenTTL)
	if err != nil {
		return fmt.Errorf("issue token: %w", err)
	}
	ev.Type, ev.Subject, ev.Roles, ev.KeyID = EventAuthSuccess, cred.subject, cred.roles, s.signer.Key.ID
	if err := s.audit.Record(ctx, ev); err != nil {
		return auditUnavailable(err)
	}
	c.JSON(http.StatusOK, tokenResponse{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int64(s.cfg.Auth.TokenTTL.Seconds()), ExpiresAt: exp.UTC()})
	return nil
}

// loginSlotWait bounds how long a login waits for a credential check slot.
var loginSlotWait = 2 * time.Second

// loginSlot takes one of the credential check slots (as many as CPUs, at
// least 2): a bcrypt comparison costs tens of milliseconds of CPU, and
// wrong guesses from many addresses are bounded per address only, so
// without this a login flood could take every CPU from the exec API. A
// login that finds no slot within loginSlotWait gets 429 rate_limited.
func (s *Server) loginSlot(ctx context.Context) (release func(), err error) {
	t := time.NewTimer(loginSlotWait)
	defer t.Stop()
	select {
	case s.checking <- struct{}{}:
		return func() { <-s.checking }, nil
	case <-t.C:
		s.metrics.Limited("login_checks")
		e := httpErr(http.StatusTooManyRequests, CodeRateLimited, "too many logins under way, retry later", errors.New("no credential check slot"))
		e.RetryAfter = time.Second
		return nil, e
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// badTokenRequest audits an attempt whose body could not even be read as a
// login (every attempt is audited; auth_per_ip bounds how many) and
// returns its 400.
func (s *Server) badTokenRequest(c *gin.Context, err error) error {
	ev := s.event(c, EventAuthFailure)
	ev.Reason, ev.Error = CodeInvalidRequest, err.Error()
	_ = s.audit.Record(c.Request.Context(), ev) // refused either way
	return err
}

func (s *Server) loginFailed(c *gin.Context, ev Event, name, ip string) error {
	ctx := c.Request.Context()
	s.metrics.AuthFailed("bad_credentials")
	ev.Reason = "bad_credentials"
	_ = s.audit.Record(ctx, ev)
	scope, err := s.lockouts.failed(ctx, name, ip)
	if err != nil {
		if e, ok := s.storeFull(c, "lockout", err); ok {
			return e
		}
		return httpErr(http.StatusServiceUnavailable, CodeUnavailable, "try again later", err)
	}
	if scope != "" {
		lev := ev
		lev.Type, lev.Reason, lev.Target = EventLockout, CodeLockedOut, scope
		lev.RetryAfterS = int64(s.cfg.Auth.Lockout.Duration.Seconds())
		_ = s.audit.Record(ctx, lev)
	}
	return httpErr(http.StatusUnauthorized, CodeUnauthorized, "invalid credentials", errors.New("bad credentials"))
}

func auditUnavailable(err error) *HTTPError {
	return httpErr(http.StatusServiceUnavailable, CodeAuditUnavailable, "the audit log is unavailable; nothing was run", err)
}
