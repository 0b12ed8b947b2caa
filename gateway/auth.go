package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Principal is the verified caller.
type Principal struct {
	Subject string
	Roles   []string
	TokenID string
	KeyID   string // the kid that verified the token
}

// subjectRe is the only form a subject may take: it becomes a path component
// of the caller's workspace.
var subjectRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// roleRe is the form of a role name.
var roleRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

const maxRoles = 32

// ValidSubject reports whether s may be a subject (also "." and ".." are refused).
func ValidSubject(s string) bool { return subjectRe.MatchString(s) && s != "." && s != ".." }

// Keyring is the set of verification keys live at once, selected by kid.
type Keyring struct {
	keys    map[string]*Key
	methods []string
}

// NewKeyring indexes keys by id; ids must be unique.
func NewKeyring(keys []*Key) (*Keyring, error) {
	kr := &Keyring{keys: map[string]*Key{}}
	seen := map[string]bool{}
	for _, k := range keys {
		if _, dup := kr.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate key id %q", ErrKey, k.ID)
		}
		kr.keys[k.ID] = k
		if !seen[k.Algorithm] {
			seen[k.Algorithm] = true
			kr.methods = append(kr.methods, k.Algorithm)
		}
	}
	if len(kr.keys) == 0 {
		return nil, fmt.Errorf("%w: no verification key configured", ErrKey)
	}
	sort.Strings(kr.methods)
	return kr, nil
}

// LoadKeyring loads every configured verification key.
func LoadKeyring(kcs []KeyConfig) (*Keyring, error) {
	var keys []*Key
	for _, kc := range kcs {
		k, err := LoadKey(kc, false)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewKeyring(keys)
}

// lookup selects the key a token names. Without a kid, the only key is used.
func (kr *Keyring) lookup(t *jwt.Token) (any, error) {
	// crit names extensions the verifier must understand; we understand none.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("crit header is not supported")
	}
	var k *Key
	switch kid := t.Header["kid"].(type) {
	case nil:
		if len(kr.keys) != 1 {
			return nil, errors.New("token has no kid and several keys are configured")
		}
		for _, only := range kr.keys {
			k = only
		}
	case string:
		k = kr.keys[kid]
		if k == nil {
			return nil, errors.New("unknown kid")
		}
	default:
		return nil, errors.New("kid is not a string")
	}
	if t.Method.Alg() != k.Algorithm {
		return nil, fmt.Errorf("algorithm %s does not match key %s", t.Method.Alg(), k.ID)
	}
	return k.Key, nil
}

// Verifier checks bearer tokens against the keyring and the configured
// claims. Verified tokens are remembered until they expire (a new Verifier,
// as on key reload, starts empty), so a client reusing its token costs a
// hash and a map lookup instead of a parse and a signature check.
type Verifier struct {
	cfg   JWTConfig
	ring  *Keyring
	now   func() time.Time
	cache verifiedCache
}

// verifiedCache maps sha256(token) to its principal and expiry.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[32]byte]verified
}

type verified struct {
	p   Principal
	exp time.Time
}

// maxVerifiedCache bounds the cache; when full it starts over.
const maxVerifiedCache = 4096

func (vc *verifiedCache) get(key [32]byte, now time.Time) (Principal, bool) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	v, ok := vc.m[key]
	if !ok {
		return Principal{}, false
	}
	if !now.Before(v.exp) {
		delete(vc.m, key)
		return Principal{}, false
	}
	return v.p, true
}

func (vc *verifiedCache) put(key [32]byte, p Principal, exp time.Time) {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.m == nil || len(vc.m) >= maxVerifiedCache {
		vc.m = make(map[[32]byte]verified)
	}
	vc.m[key] = verified{p: p, exp: exp}
}

// NewVerifier builds a verifier; cfg.Issuer and cfg.Audience are required.
func NewVerifier(cfg JWTConfig, ring *Keyring) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, &ConfigError{Key: "jwt", Message: "issuer and audience are required"}
	}
	return &Verifier{cfg: cfg, ring: ring, now: time.Now}, nil
}

// TokenError says why a token was refused; Reason is a short stable label
// used for metrics and the audit log.
type TokenError struct {
	Reason string
	Err    error
}

// Error renders the reason and the detail.
func (e *TokenError) Error() string {
	if e.Err != nil {
		return "token " + e.Reason + ": " + e.Err.Error()
	}
	return "token " + e.Reason
}

// Unwrap returns the detail.
func (e *TokenError) Unwrap() error { return e.Err }

// Is makes every TokenError match ErrUnauthorized.
func (e *TokenError) Is(target error) bool { return target == ErrUnauthorized }

// Verify checks a raw token and returns its principal.
func (v *Verifier) Verify(raw string) (Principal, error) {
	p, _, err := v.verify(raw)
	return p, err
}

// verify is Verify that also says whether the token was checked now (false:
// remembered from an earlier check).
func (v *Verifier) verify(raw string) (Principal, bool, error) {
	if raw == "" {
		return Principal{}, false, &TokenError{Reason: "missing"}
	}
	if len(raw) > v.cfg.MaxTokenBytes {
		return Principal{}, false, &TokenError{Reason: "too_large", Err: fmt.Errorf("%d bytes", len(raw))}
	}
	key := sha256.Sum256([]byte(raw))
	if p, ok := v.cache.get(key, v.now()); ok {
		return p, false, nil
	}
	p, err := v.check(raw, key)
	return p, err == nil, err
}

// check parses and verifies raw, and remembers it when valid.
func (v *Verifier) check(raw string, key [32]byte) (Principal, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods(v.ring.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithLeeway(v.cfg.Leeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithStrictDecoding(),
	)
	claims := jwt.MapClaims{}
	tok, err := p.ParseWithClaims(raw, claims, v.ring.lookup)
	if err != nil {
		return Principal{}, &TokenError{Reason: tokenReason(err), Err: err}
	}
	if err := duplicateClaims(raw); err != nil {
		return Principal{}, &TokenError{Reason: "malformed", Err: err}
	}
	pr, err := v.principal(claims)
	if err != nil {
		return Principal{}, err
	}
	pr.KeyID, _ = tok.Header["kid"].(string)
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		v.cache.put(key, pr, exp.Time) // never past exp: the leeway is not extended
	}
	return pr, nil
}

// duplicateClaims refuses a token whose header or claims repeat a key
// (also one differing only in case): encoding/json keeps the last one, other
// readers of the same token may keep the first. raw has been parsed already.
func duplicateClaims(raw string) error {
	for i, seg := range strings.SplitN(raw, ".", 3)[:2] {
		data, err := base64.RawURLEncoding.DecodeString(seg)
		if err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if p := checkKeys(data, nil); p != nil {
			return fmt.Errorf("key %q appears twice", truncate(p.Key, 32))
		}
	}
	return nil
}

func tokenReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not_yet_valid"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "bad_issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "bad_audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing_claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad_signature"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	}
	return "invalid"
}

// principal applies the rules jwt does not: iat required, maximum
// lifetime, subject and roles form.
func (v *Verifier) principal(c jwt.MapClaims) (Principal, error) {
	iat, err := c.GetIssuedAt()
	if err != nil || iat == nil {
		return Principal{}, &TokenError{Reason: "missing_claim", Err: errors.New("iat is required")}
	}
	exp, _ := c.GetExpirationTime() // required and checked by the parser
	now := v.now()
	// Both at most the maximum, as configured: the leeway forgives clock
	// skew in exp, nbf and iat, never a longer life.
	if exp.Sub(iat.Time) > v.cfg.MaxLifetime || exp.Sub(now) > v.cfg.MaxLifetime {
		return Principal{}, &TokenError{Reason: "lifetime_too_long", Err: fmt.Errorf("lifetime over %s", v.cfg.MaxLifetime)}
	}
	sub, _ := c["sub"].(string)
	if !ValidSubject(sub) {
		return Principal{}, &TokenError{Reason: "bad_subject", Err: errors.New("sub missing or not of the allowed form")}
	}
	roles, err := rolesFrom(c[v.cfg.RolesClaim])
	if err != nil {
		return Principal{}, &TokenError{Reason: "bad_roles", Err: err}
	}
	jti, _ := c["jti"].(string)
	if len(jti) > 128 {
		jti = jti[:128]
	}
	return Principal{Subject: sub, Roles: roles, TokenID: jti}, nil
}

func rolesFrom(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, errors.New("roles claim is not an array")
	}
	if len(list) > maxRoles {
		return nil, fmt.Errorf("more than %d roles", maxRoles)
	}
	roles := make([]string, 0, len(list))
	for _, r := range list {
		s, ok := r.(string)
		if !ok || !roleRe.MatchString(s) {
			return nil, errors.New("a role is not a string of the allowed form")
		}
		roles = append(roles, s)
	}
	return roles, nil
}

// Signer mints tokens with the gateway's own key.
type Signer struct {
	Key      *Key
	Issuer   string
	Audience string
	now      func() time.Time
}

// NewSigner builds a signer.
func NewSigner(k *Key, issuer, audience string) *Signer {
	return &Signer{Key: k, Issuer: issuer, Audience: audience, now: time.Now}
}

// Sign mints a token for sub with roles, valid for ttl.
func (s *Signer) Sign(sub string, roles []string, ttl time.Duration) (string, time.Time, error) {
	if !ValidSubject(sub) {
		return "", time.Time{}, fmt.Errorf("subject %q must match %s", sub, subjectRe)
	}
	for _, r := range roles {
		if !roleRe.MatchString(r) {
			return "", time.Time{}, fmt.Errorf("role %q must match %s", r, roleRe)
		}
	}
	if ttl <= 0 {
		return "", time.Time{}, errors.New("ttl must be positive")
	}
	now := s.now().Truncate(time.Second)
	exp := now.Add(ttl)
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	if roles == nil {
		roles = []string{}
	}
	claims := jwt.MapClaims{
		"sub": sub, "roles": roles, "iss": s.Issuer, "aud": s.Audience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": hex.EncodeToString(jti[:]),
	}
	t := jwt.NewWithClaims(s.Key.signingMethod(), claims)
	t.Header["kid"] = s.Key.ID
	signed, err := t.SignedString(s.Key.Key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// bearerToken extracts the token of an Authorization header ("" if none).
func bearerToken(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
