package gateway

import (
	"time"

	"github.com/execgate/execgate/policy"
)

// EventType names what an audit line records. docs/audit.md lists every type
// and the fields each one carries.
type EventType string

// The audit event types.
const (
	EventAuthSuccess  EventType = "auth_success"  // a JWT verified, or /auth/token issued a token
	EventAuthFailure  EventType = "auth_failure"  // a JWT refused, or a /auth/token attempt failed
	EventLockout      EventType = "lockout"       // a user+IP pair or an IP got locked out of /auth/token
	EventDecision     EventType = "decision"      // the policy allowed or denied a request (exec and check)
	EventExecStart    EventType = "exec_start"    // a sandbox is about to start (written before it runs)
	EventExecEnd      EventType = "exec_end"      // a sandbox run ended (or failed to start)
	EventPolicyReload EventType = "policy_reload" // a policy (re)load succeeded or failed
	EventAdminAction  EventType = "admin_action"  // drain, session kill, and other admin endpoints
	EventRejected     EventType = "rejected"      // refused before a decision: rate limit, capacity, draining, network
	EventServerStart  EventType = "server_start"  // the gateway started serving
	EventServerStop   EventType = "server_stop"   // the gateway is shutting down

	// EventAuditSuppressed counts the refusals of one client IP group and
	// window that were not written one by one (limits.auth_failures_per_ip,
	// limits.refusal_audit_per_ip).
	EventAuditSuppressed EventType = "audit_suppressed"
)

// Event is one audit line. Zero-valued fields are left out of the line,
// except the pointer fields, which are written whenever they are set (so
// allowed=false and exit_code=0 appear). Record fills Time when it is zero
// and redacts Args, Argv, Cmdline, Env, UserAgent, Message and Error; it
// never writes a token or a secret. Never put a token, password or key in
// any other field.
type Event struct {
	Time time.Time `json:"time"`
	Type EventType `json:"type"`

	// Who and where.
	RequestID  string   `json:"request_id,omitempty"`
	DecisionID string   `json:"decision_id,omitempty"`
	SessionID  string   `json:"session_id,omitempty"` // the run/session id (DELETE /v1/sessions/{id})
	Subject    string   `json:"subject,omitempty"`    // verified sub, or the attempted username on auth failure
	Roles      []string `json:"roles,omitempty"`
	RemoteIP   string   `json:"remote_ip,omitempty"`
	UserAgent  string   `json:"user_agent,omitempty"`
	Method     string   `json:"method,omitempty"` // HTTP method
	Route      string   `json:"route,omitempty"`  // route pattern, e.g. "/v1/exec"
	Status     int      `json:"status,omitempty"` // HTTP status answered, when known
	PolicyHash string   `json:"policy_hash,omitempty"`

	// Authentication.
	AuthMethod string `json:"auth_method,omitempty"` // "jwt", "api_key", "password"
	KeyID      string `json:"kid,omitempty"`         // the JWT kid, never the key

	// What was asked and decided.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`    // redacted
	Cmdline string            `json:"cmdline,omitempty"` // redacted
	Argv    []string          `json:"argv,omitempty"`    // final argv, redacted
	EnvKeys []string          `json:"env_keys,omitempty"`
	Env     map[string]string `json:"env,omitempty"` // values redacted; secret-looking keys fully
	Cwd     string            `json:"cwd,omitempty"`
	TTY     bool              `json:"tty,omitempty"`

	Allowed *bool              `json:"allowed,omitempty"`
	Reason  string             `json:"reason,omitempty"`  // policy reason code or refusal code
	Message string             `json:"message,omitempty"` // human text, redacted
	Rule    *policy.RuleRef    `json:"rule,omitempty"`
	Trace   []policy.TraceStep `json:"trace,omitempty"`
	DryRun  bool               `json:"dry_run,omitempty"` // /v1/exec/check: decided, not run

	// How a run went.
	ExitCode        *int   `json:"exit_code,omitempty"`
	Signal          string `json:"signal,omitempty"`
	DurationMS      int64  `json:"duration_ms,omitempty"`
	StartLatencyMS  int64  `json:"start_latency_ms,omitempty"`
	StdoutBytes     int64  `json:"stdout_bytes,omitempty"`
	StderrBytes     int64  `json:"stderr_bytes,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	EndedBy         string `json:"ended_by,omitempty"`

	// Admin actions, lockouts, reloads.
	Result       string   `json:"result,omitempty"`        // "success" or "failure" (reloads, admin actions)
	Action       string   `json:"action,omitempty"`        // "drain", "kill_session", ...
	Target       string   `json:"target,omitempty"`        // what the action applied to (a session id)
	RetryAfterS  int64    `json:"retry_after_s,omitempty"` // lockout length
	PolicyErrors []string `json:"policy_errors,omitempty"` // a failed reload's errors (file:line:col: ...)

	// Suppressed is the count of an audit_suppressed line.
	Suppressed int64 `json:"suppressed,omitempty"`

	Error string `json:"error,omitempty"` // redacted
}

// AuditBool returns a pointer to b, for Event.Allowed.
func AuditBool(b bool) *bool { return &b }

// AuditInt returns a pointer to i, for Event.ExitCode.
func AuditInt(i int) *int { return &i }
