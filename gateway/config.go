package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/execgate/execgate/sandbox"
)

// Config is the gateway's whole configuration. Default returns it with every
// default set; LoadConfig reads a file over those defaults. Every field is
// documented with its default and its security effect in
// deploy/execgate.example.yaml.
type Config struct {
	Listen        string        `yaml:"listen"`
	MetricsListen string        `yaml:"metrics_listen"`
	Policy        string        `yaml:"policy"`
	StateDir      string        `yaml:"state_dir"`
	AuditLog      string        `yaml:"audit_log"`
	PolicyPoll    time.Duration `yaml:"policy_poll"`
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	User          string        `yaml:"user"`
	Instance      string        `yaml:"instance"`

	TLS     TLSConfig     `yaml:"tls"`
	JWT     JWTConfig     `yaml:"jwt"`
	Auth    AuthConfig    `yaml:"auth"`
	Limits  LimitsConfig  `yaml:"limits"`
	Network NetworkConfig `yaml:"network"`
	HTTP    HTTPConfig    `yaml:"http"`
	Sandbox SandboxConfig `yaml:"sandbox"`
	// Redact adds to the audit log's built-in redaction (tokens, keys,
	// passwords, credentials in URLs, home directories): extra value
	// patterns, secret flags and secret environment names.
	Redact RedactConfig `yaml:"redact"`

	// Dev marks the no-argument development mode; not settable from a file.
	Dev bool `yaml:"-"`
}

// TLSConfig enables TLS on the gateway's own listener.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// KeyConfig names one key file.
type KeyConfig struct {
	ID        string `yaml:"id"`
	File      string `yaml:"file"`
	Algorithm string `yaml:"algorithm"`
}

// JWTConfig is how bearer tokens are verified.
type JWTConfig struct {
	Keys          []KeyConfig   `yaml:"keys"`
	Issuer        string        `yaml:"issuer"`
	Audience      string        `yaml:"audience"`
	Leeway        time.Duration `yaml:"leeway"`
	MaxLifetime   time.Duration `yaml:"max_lifetime"`
	RolesClaim    string        `yaml:"roles_claim"`
	MaxTokenBytes int           `yaml:"max_token_bytes"`
}

// AuthConfig is POST /auth/token: credentials and lockouts.
type AuthConfig struct {
	SigningKey KeyConfig     `yaml:"signing_key"`
	TokenTTL   time.Duration `yaml:"token_ttl"`
	APIKeys    []APIKey      `yaml:"api_keys"`
	Users      []User        `yaml:"users"`
	Lockout    LockoutConfig `yaml:"lockout"`
}

// APIKey is a credential "<id>.<secret>" whose secret is stored as a bcrypt hash.
type APIKey struct {
	ID         string   `yaml:"id"`
	SecretHash string   `yaml:"secret_hash"`
	Subject    string   `yaml:"subject"`
	Roles      []string `yaml:"roles"`
}

// User is a username with a bcrypt password hash.
type User struct {
	Username     string   `yaml:"username"`
	PasswordHash string   `yaml:"password_hash"`
	Roles        []string `yaml:"roles"`
}

// LockoutConfig says when failed logins lock a user+IP pair or an IP out.
type LockoutConfig struct {
	Window        time.Duration `yaml:"window"`
	PairThreshold int64         `yaml:"pair_threshold"`
	IPThreshold   int64         `yaml:"ip_threshold"`
	Duration      time.Duration `yaml:"duration"`
}

// LimitsConfig is rate limits and concurrency caps. Rates use the
// "<count>-<S|M|H|D>" form, e.g. "10-M" is ten per minute.
type LimitsConfig struct {
	RedisURL           string `yaml:"redis_url"`
	RedisCAFile        string `yaml:"redis_ca_file"`
	AuthPerIP          string `yaml:"auth_per_ip"`
	AuthPerUser        string `yaml:"auth_per_user"`
	ExecPerIP          string `yaml:"exec_per_ip"`
	ExecPerUser        string `yaml:"exec_per_user"`
	WSPerIP            string `yaml:"ws_per_ip"`
	WSPerUser          string `yaml:"ws_per_user"`
	APIPerIP           string `yaml:"api_per_ip"`
	AuthFailuresPerIP  string `yaml:"auth_failures_per_ip"`
	RefusalAuditPerIP  string `yaml:"refusal_audit_per_ip"`
	RefusalAuditTotal  string `yaml:"refusal_audit_total"`
	MaxSessions        int    `yaml:"max_sessions"`
	MaxSessionsPerUser int    `yaml:"max_sessions_per_user"`
	// MemoryStoreMaxKeys caps the in-memory store's entries (without
	// redis_url): see memStore.
	MemoryStoreMaxKeys int `yaml:"memory_store_max_keys"`
}

// SandboxConfig is what the gateway passes to the sandbox Manager.
type SandboxConfig struct {
	// CgroupWarmup keeps the cgroup v1 warm-up on (sandbox.Config's
	// DisableCgroupWarmup is its negation): a host-wide side effect.
	CgroupWarmup bool `yaml:"cgroup_warmup"`
	// CgroupParent is the absolute cgroup under which the instance's
	// sandboxes are created ("": /execgate/<instance>); on cgroup v2 it
	// must lie in the service's delegated subtree. sandbox.ValidateCgroupParent
	// says what is accepted.
	CgroupParent string `yaml:"cgroup_parent"`
	// MinFreeBytes is the free space that the file systems of the state
	// directory, the audit log, the sandbox state root and a run's
	// workspace must keep: below it a run is refused with disk_full, and
	// a running one writing to a file system that falls below it is killed
	// (ended_by disk_full; default sandbox.DefaultMinFreeBytes, 512 MiB).
	MinFreeBytes uint64 `yaml:"min_free_bytes"`
}

// minMinFreeBytes is the smallest sandbox.min_free_bytes accepted: the
// reserve cannot be switched off.
const minMinFreeBytes = 1 << 20

// NetworkConfig is who may connect. Empty allow lists allow every address;
// block lists win over allow lists.
type NetworkConfig struct {
	TrustedProxies []string `yaml:"trusted_proxies"`
	Allow          []string `yaml:"allow"`
	Block          []string `yaml:"block"`
	AdminAllow     []string `yaml:"admin_allow"`
	AdminBlock     []string `yaml:"admin_block"`
	WSAllow        []string `yaml:"ws_allow"`
	WSBlock        []string `yaml:"ws_block"`
	MetricsAllow   []string `yaml:"metrics_allow"`
	MetricsBlock   []string `yaml:"metrics_block"`
}

// HTTPConfig is server timeouts, size limits and CORS.
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	CORSOrigins       []string      `yaml:"cors_origins"`
	CORSCredentials   bool          `yaml:"cors_credentials"`
}

// Default returns the configuration with every default: the one place
// defaults live.
func Default() Config {
	return Config{
		Listen:        "127.0.0.1:8080",
		MetricsListen: "127.0.0.1:9091",
		Policy:        "/etc/execgate/policies",
		StateDir:      "/var/lib/execgate",
		PolicyPoll:    2 * time.Second,
		ShutdownGrace: 10 * time.Second,
		User:          "execgate",
		Instance:      "default",
		JWT: JWTConfig{
			Leeway:        30 * time.Second,
			MaxLifetime:   60 * time.Minute,
			RolesClaim:    "roles",
			MaxTokenBytes: 8 << 10,
		},
		Auth: AuthConfig{
			TokenTTL: 15 * time.Minute,
			Lockout: LockoutConfig{
				Window:        15 * time.Minute,
				PairThreshold: 5,
				IPThreshold:   50,
				Duration:      15 * time.Minute,
			},
		},
		Limits: LimitsConfig{
			AuthPerIP:          "30-M",
			AuthPerUser:        "10-M",
			ExecPerIP:          "600-M",
			ExecPerUser:        "120-M",
			WSPerIP:            "60-M",
			WSPerUser:          "30-M",
			APIPerIP:           "300-M",
			AuthFailuresPerIP:  "30-M",
			RefusalAuditPerIP:  "60-M",
			RefusalAuditTotal:  "600-M",
			MaxSessions:        64,
			MaxSessionsPerUser: 4,
			MemoryStoreMaxKeys: DefaultMemoryStoreMaxKeys,
		},
		Sandbox: SandboxConfig{CgroupWarmup: true, MinFreeBytes: sandbox.DefaultMinFreeBytes},
		Network: NetworkConfig{
			AdminAllow: []string{"127.0.0.0/8", "::1/128"},
		},
		HTTP: HTTPConfig{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      5 * time.Minute,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
			MaxBodyBytes:      1 << 20,
		},
	}
}

// AuditConfig is the Auditor configuration of c: its file and its
// redaction (the built-in detectors plus redact).
func (c *Config) AuditConfig(log *slog.Logger, met *Metrics) (AuditConfig, error) {
	red, err := NewRedactor(c.Redact)
	if err != nil {
		return AuditConfig{}, &ConfigError{Key: "redact", Message: err.Error()}
	}
	return AuditConfig{Path: c.AuditLogPath(), Redactor: red, Logger: log, Metrics: met}, nil
}

// AuditLogPath is the audit log file: audit_log, or state_dir/audit.log.
func (c *Config) AuditLogPath() string {
	if c.AuditLog != "" {
		return c.AuditLog
	}
	return strings.TrimRight(c.StateDir, "/") + "/audit.log"
}

// maxConfigBytes bounds a config file.
const maxConfigBytes = 1 << 20

// LoadConfig reads a YAML config file over Default. Unknown keys, wrong
// types and a file readable by group or others are errors naming file:line.
func LoadConfig(path string) (Config, error) {
	cfg := Default()
	if err := checkPrivateFile(path); err != nil {
		return cfg, err
	}
	f, err := os.Open(path)
	if err != nil {
		return cfg, &ConfigError{File: path, Message: err.Error()}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return cfg, &ConfigError{File: path, Message: err.Error()}
	}
	if len(data) > maxConfigBytes {
		return cfg, &ConfigError{File: path, Message: "file larger than 1 MiB"}
	}
	if err := decodeConfig(path, data, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeConfig decodes strictly; every yaml error becomes a ConfigError.
func decodeConfig(path string, data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(cfg)
	if errors.Is(err, io.EOF) {
		return nil // an empty file: all defaults
	}
	if err == nil {
		var extra yaml.Node
		if dec.Decode(&extra) != io.EOF {
			return &ConfigError{File: path, Message: "more than one YAML document"}
		}
		return nil
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, msg := range te.Errors {
			errs = append(errs, yamlMsgError(path, msg))
		}
		return errors.Join(errs...)
	}
	return yamlMsgError(path, strings.TrimPrefix(err.Error(), "yaml: "))
}

func yamlMsgError(path, msg string) error {
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{File: path, Line: line, Message: m[2]}
	}
	return &ConfigError{File: path, Message: msg}
}

// checkPrivateFile refuses a file that group or others may read or write.
func checkPrivateFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &ConfigError{File: path, Message: err.Error()}
	}
	if !st.Mode().IsRegular() {
		return &ConfigError{File: path, Message: "not a regular file"}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return &ConfigError{File: path, Message: fmt.Sprintf("mode %04o: readable or writable by group or others (chmod 600)", st.Mode().Perm())}
	}
	return nil
}
