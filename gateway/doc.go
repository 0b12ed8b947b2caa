// Package gateway is execgate's network front: the HTTP server behind
// `execgate serve`. Every request passes the same pipeline:
//
//  1. Network hygiene: a request id (X-Request-Id on every response),
//     security headers, CORS from an allowlist, header and body size limits,
//     client networks allowed or blocked by CIDR (globally, and separately
//     for admin endpoints, WebSocket upgrades and the metrics listener), the
//     client IP taken from the socket unless the peer is a trusted proxy. A
//     header guard (headerguard*.go) follows each HTTP/1.x connection's
//     framing and answers header blocks of any size over the limit with the
//     JSON 413 itself.
//  2. Authentication: a JWT from `Authorization: Bearer` only (a token in a
//     query string is refused with token_in_query and never logged), with the
//     algorithm pinned, exp/iat/iss/aud required and checked, a bounded
//     lifetime and size, and kid-selected keys reloadable on SIGHUP.
//     POST /auth/token exchanges configured credentials for a short-lived
//     token, with failures counted per user+IP and per IP and lockouts kept
//     apart from the rate limiter's windows.
//  3. Limits: per-IP and per-user rate limits (memory, or Redis shared by
//     several instances; the memory store is bounded and refuses new
//     clients rather than evict a live limit or lockout, memstore.go) and
//     a cap on concurrently running sandboxes,
//     globally and per user. Failed authentications and refusals are
//     bounded per IP too (refusals.go): past the bound they are counted
//     into one audit_suppressed line per IP and window instead of a line
//     each, so unauthenticated clients cannot fill the audit disk.
//  4. Decision: the policy engine (package policy) decides from the verified
//     subject and roles; clients get the reason code, the rule and trace go
//     to the audit log only.
//  5. Audit: every authentication, decision, run, reload, lockout and admin
//     action becomes one redacted JSON line, written and fsynced before the
//     answer is sent (Auditor, with group commit). When the audit log cannot
//     be written the gateway answers 503 audit_unavailable and runs nothing.
//  6. Run: an allowed command runs in the sandbox (through the root executor
//     of package sandbox/executor), and its output, exit code and what ended
//     it come back as JSON.
//
// Errors share one envelope, {"error":{"code","message","request_id"}}
// (denials add "reason"); docs/api.md and docs/openapi.yaml describe every
// endpoint and code, and a test keeps them in sync with each other and with
// the registered routes. Metrics (Metrics, MetricsHandler) are Prometheus
// collectors on a caller-supplied registry, served on a separate listener or
// behind the admin permission. docs/audit.md describes the audit line format.
//
// Only package cmd imports gateway; gateway imports policy and sandbox, never
// the other way round.
package gateway
