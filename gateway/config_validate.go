package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/execgate/execgate/sandbox"
)

// Validate checks the settings that do not need a file read.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &ConfigError{Key: key, Message: fmt.Sprintf(format, a...)})
	}
	c.validateBasics(bad)
	c.validateAuth(bad)
	c.validateLimits(bad)
	c.validateNetwork(bad)
	c.validateSandbox(bad)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() }) // stable output
	return errors.Join(errs...)
}

// badFunc records one configuration error.
type badFunc func(key, format string, a ...any)

func (c *Config) validateBasics(bad badFunc) {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "%v", err)
		}
	}
	if c.Policy == "" {
		bad("policy", "required")
	}
	if _, err := NewRedactor(c.Redact); err != nil {
		bad("redact", "%v", err)
	}
	switch {
	case c.StateDir == "":
		bad("state_dir", "required")
	case !filepath.IsAbs(c.StateDir):
		bad("state_dir", "%q: want an absolute path (the sandbox's free-space reserve and workspace images are kept by it)", c.StateDir)
	}
	if c.AuditLog != "" && !filepath.IsAbs(c.AuditLog) {
		bad("audit_log", "%q: want an absolute path (its directory keeps the free-space reserve)", c.AuditLog)
	}
	if !instanceRe.MatchString(c.Instance) {
		bad("instance", "must match %s", instanceRe)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	positive := map[string]time.Duration{
		"policy_poll": c.PolicyPoll, "shutdown_grace": c.ShutdownGrace,
		"jwt.max_lifetime": c.JWT.MaxLifetime, "auth.token_ttl": c.Auth.TokenTTL,
		"auth.lockout.window": c.Auth.Lockout.Window, "auth.lockout.duration": c.Auth.Lockout.Duration,
		"http.read_header_timeout": c.HTTP.ReadHeaderTimeout, "http.read_timeout": c.HTTP.ReadTimeout,
		"http.write_timeout": c.HTTP.WriteTimeout, "http.idle_timeout": c.HTTP.IdleTimeout,
	}
	for k, v := range positive {
		if v <= 0 {
			bad(k, "must be positive, got %s", v)
		}
	}
	if c.HTTP.WriteTimeout < 10*time.Second {
		bad("http.write_timeout", "must be at least 10s (runs end 5s before it), got %s", c.HTTP.WriteTimeout)
	}
	if c.HTTP.MaxHeaderBytes < 1024 || c.HTTP.MaxBodyBytes < 1024 {
		bad("http", "max_header_bytes and max_body_bytes must be at least 1024")
	}
	for _, o := range c.HTTP.CORSOrigins {
		if o == "*" || !strings.HasPrefix(o, "https://") && !strings.HasPrefix(o, "http://") || strings.Count(o, "/") != 2 {
			bad("http.cors_origins", "%q: an exact origin like https://app.example.com is required (no *, no path)", o)
		}
	}
}

func (c *Config) validateAuth(bad badFunc) {
	if c.JWT.Leeway < 0 || c.JWT.Leeway > 5*time.Minute {
		bad("jwt.leeway", "must be between 0 and 5m, got %s", c.JWT.Leeway)
	}
	if c.Auth.TokenTTL > c.JWT.MaxLifetime {
		bad("auth.token_ttl", "%s exceeds jwt.max_lifetime %s", c.Auth.TokenTTL, c.JWT.MaxLifetime)
	}
	if c.JWT.MaxTokenBytes < 256 || c.JWT.MaxTokenBytes > 64<<10 {
		bad("jwt.max_token_bytes", "must be between 256 and 65536, got %d", c.JWT.MaxTokenBytes)
	}
	if !claimNameRe.MatchString(c.JWT.RolesClaim) {
		bad("jwt.roles_claim", "must match %s", claimNameRe)
	}
	if c.Auth.Lockout.PairThreshold < 1 || c.Auth.Lockout.IPThreshold < c.Auth.Lockout.PairThreshold {
		bad("auth.lockout", "need 1 <= pair_threshold <= ip_threshold, got %d and %d", c.Auth.Lockout.PairThreshold, c.Auth.Lockout.IPThreshold)
	}
	for i, k := range c.JWT.Keys {
		if k.File == "" {
			bad(fmt.Sprintf("jwt.keys[%d].file", i), "required")
		}
	}
}

func (c *Config) validateLimits(bad badFunc) {
	if c.Limits.MaxSessions < 1 || c.Limits.MaxSessionsPerUser < 1 || c.Limits.MaxSessionsPerUser > c.Limits.MaxSessions {
		bad("limits", "need 1 <= max_sessions_per_user <= max_sessions")
	}
	for k, v := range map[string]string{
		"limits.auth_per_ip": c.Limits.AuthPerIP, "limits.auth_per_user": c.Limits.AuthPerUser,
		"limits.exec_per_ip": c.Limits.ExecPerIP, "limits.exec_per_user": c.Limits.ExecPerUser,
		"limits.ws_per_ip": c.Limits.WSPerIP, "limits.ws_per_user": c.Limits.WSPerUser,
		"limits.api_per_ip": c.Limits.APIPerIP, "limits.auth_failures_per_ip": c.Limits.AuthFailuresPerIP,
		"limits.refusal_audit_per_ip": c.Limits.RefusalAuditPerIP, "limits.refusal_audit_total": c.Limits.RefusalAuditTotal,
	} {
		if _, err := parseRate(v); err != nil {
			bad(k, "%v", err)
		}
	}
	if n := c.Limits.MemoryStoreMaxKeys; n < minMemoryStoreMaxKeys || n > maxMemoryStoreMaxKeys {
		bad("limits.memory_store_max_keys", "must be between %d and %d, got %d", minMemoryStoreMaxKeys, maxMemoryStoreMaxKeys, n)
	}
	if c.Limits.RedisURL != "" && !strings.HasPrefix(c.Limits.RedisURL, "redis://") && !strings.HasPrefix(c.Limits.RedisURL, "rediss://") {
		bad("limits.redis_url", "must be a redis:// or rediss:// URL")
	}
	if c.Limits.RedisCAFile != "" && !strings.HasPrefix(c.Limits.RedisURL, "rediss://") {
		bad("limits.redis_ca_file", "only with a rediss:// (TLS) redis_url")
	}
}

func (c *Config) validateNetwork(bad badFunc) {
	for k, v := range map[string][]string{
		"network.trusted_proxies": c.Network.TrustedProxies, "network.allow": c.Network.Allow,
		"network.block": c.Network.Block, "network.admin_allow": c.Network.AdminAllow,
		"network.admin_block": c.Network.AdminBlock, "network.ws_allow": c.Network.WSAllow,
		"network.ws_block": c.Network.WSBlock, "network.metrics_allow": c.Network.MetricsAllow,
		"network.metrics_block": c.Network.MetricsBlock,
	} {
		if _, err := parsePrefixes(v); err != nil {
			bad(k, "%v", err)
		}
	}
	c.validateMetricsListen(bad)
}

func (c *Config) validateSandbox(bad badFunc) {
	if p := c.Sandbox.CgroupParent; p != "" {
		if err := sandbox.ValidateCgroupParent(p); err != nil {
			bad("sandbox.cgroup_parent", "%v", err)
		}
	} else if instanceRe.MatchString(c.Instance) {
		// The default parent is /execgate/<instance>: an instance named
		// like a container cgroup (eg-...) would be refused by the sandbox.
		if err := sandbox.ValidateCgroupParent(sandbox.DefaultCgroupParentBase + "/" + c.Instance); err != nil {
			bad("instance", "%v (the default sandbox.cgroup_parent): choose another instance name or set sandbox.cgroup_parent", err)
		}
	}
	if c.Sandbox.MinFreeBytes < minMinFreeBytes {
		bad("sandbox.min_free_bytes", "must be at least %d (1 MiB), got %d", minMinFreeBytes, c.Sandbox.MinFreeBytes)
	}
}

var instanceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

var claimNameRe = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,64}$`)

// parsePrefixes parses CIDRs (a bare address is a /32 or /128). Client
// addresses are compared unmapped (::ffff:10.1.2.3 is 10.1.2.3), so an
// IPv4-mapped CIDR is read as the IPv4 one it spells (::ffff:10.0.0.0/104
// is 10.0.0.0/8); kept as IPv6 it would never match, and a block rule
// would silently block nothing. A mapped address with a prefix shorter
// than /96 mixes both and is refused. (An IPv6 prefix such as ::/0 stays
// IPv6 only: it never matches an IPv4 client.)
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			if p.Addr().Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("%q mixes IPv6 and IPv4-mapped addresses: write the IPv4 CIDR", s)
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// IsLoopbackListen reports whether addr listens on loopback only.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
