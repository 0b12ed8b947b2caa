package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/execgate/execgate/policy"
	"github.com/execgate/execgate/sandbox/executor"
)

// AuditSink is what the gateway needs of the audit log (*Auditor).
type AuditSink interface {
	// Record writes one event durably; an error means it was not written.
	Record(ctx context.Context, ev Event) error
	// RecordAllWritten writes several events in one group commit and
	// returns once they are written; the AuditCommit waits for the fsync.
	RecordAllWritten(ctx context.Context, evs ...Event) (AuditCommit, error)
	// Writable reports whether a line could be written now.
	Writable() error
}

// Deps are the parts a Server is built from.
type Deps struct {
	Runner   executor.Runner
	Audit    AuditSink
	Metrics  *Metrics             // nil: no metrics
	Registry *prometheus.Registry // served at /metrics; nil: no /metrics
	Logger   *slog.Logger

	// LoadPolicy loads the policy set; called by New and on every reload.
	LoadPolicy func(ctx context.Context) (*policy.Set, error)
	// OnPolicy receives every newly loaded set (to push it to the Runner).
	OnPolicy func(*policy.Set)
	// KeyConfigs, when set, is read on every key reload (SIGHUP) so that
	// keys added to the config file go live; nil reloads cfg.JWT.Keys' files.
	KeyConfigs func() ([]KeyConfig, error)
	// SelfCheck checks the sandbox; New refuses to build a server if it fails.
	SelfCheck func(ctx context.Context) error
	// SandboxFeatures describes the sandbox for /v1/health.
	SandboxFeatures any
	// Version is reported by /v1/health.
	Version string

	// Listener and MetricsListener, when set, are used instead of listening
	// on cfg.Listen and cfg.MetricsListen.
	Listener        net.Listener
	MetricsListener net.Listener
}

// Server is the gateway. Build it with New, run it with Serve.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	audit   AuditSink
	metrics *Metrics

	verifier  atomic.Pointer[Verifier]
	signer    *Signer
	policyPtr atomic.Pointer[policyBox]
	creds     *credentials
	checking  chan struct{} // one token per credential check under way (bcrypt: loginSlot)
	limits    *rateLimits
	lockouts  *lockouts
	sessions  *sessionTable
	clientIPs clientIPs
	netAll    netRules
	netAdmin  netRules
	netWS     netRules

	corsOrigins map[string]bool
	draining    atomic.Bool
	started     time.Time
	reloadMu    sync.Mutex   // held by a reload and by a poll
	policyStamp *policyStamp // what the poller compares with (reloadMu)
	// rejectedSeccomp are the seccomp files the last rejected load
	// reported errors for, watched until a load succeeds (reloadMu).
	rejectedSeccomp []string

	engine      *gin.Engine
	httpSrv     *http.Server
	closers     []func() error
	readyChecks []func(context.Context) error // besides policy, audit and draining

	// stopping is closed when shutdown begins (http.Server.RegisterOnShutdown):
	// hijacked, long-lived connections (WebSocket) select on Stopping and
	// close themselves, since Shutdown does not wait for or close them.
	stopping chan struct{}
	stopOnce sync.Once
}

// Stopping is closed when the server starts shutting down.
func (s *Server) Stopping() <-chan struct{} { return s.stopping }

var ginMode sync.Once

// New builds a server: it loads keys and the policy, runs the sandbox
// self-check and wires the routes. Any failure is returned, nothing runs.
func New(ctx context.Context, cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Runner == nil || deps.Audit == nil || deps.Logger == nil || deps.LoadPolicy == nil {
		return nil, errors.New("gateway: Runner, Audit, Logger and LoadPolicy are required")
	}
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, audit: deps.Audit, metrics: deps.Metrics, started: time.Now(), stopping: make(chan struct{})}
	if err := s.initAuth(); err != nil {
		return nil, err
	}
	if err := s.initNetwork(); err != nil {
		return nil, err
	}
	if err := s.initLimits(ctx); err != nil {
		return nil, err
	}
	s.sessions = newSessionTable(cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerUser)
	if deps.SelfCheck != nil {
		if err := deps.SelfCheck(ctx); err != nil {
			s.close()
			return nil, fmt.Errorf("sandbox self-check: %w", err)
		}
	}
	pre := s.stampPolicy(nil)
	set, err := deps.LoadPolicy(ctx)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("load policy: %w", err)
	}
	s.installPolicy(set, pre)
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	s.engine = s.routes()
	return s, nil
}

func (s *Server) initAuth() error {
	ring, err := LoadKeyring(s.cfg.JWT.Keys)
	if err != nil {
		return err
	}
	v, err := NewVerifier(s.cfg.JWT, ring)
	if err != nil {
		return err
	}
	s.verifier.Store(v)
	sk, err := s.signingKey(ring)
	if err != nil {
		return err
	}
	if sk != nil {
		s.signer = NewSigner(sk, s.cfg.JWT.Issuer, s.cfg.JWT.Audience)
	}
	s.checking = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))
	s.creds, err = newCredentials(s.cfg.Auth)
	return err
}

// signingKey is auth.signing_key, or the only verification key when it is
// an HMAC secret; nil means /auth/token is disabled.
func (s *Server) signingKey(ring *Keyring) (*Key, error) {
	if s.cfg.Auth.SigningKey.File != "" {
		k, err := LoadKey(s.cfg.Auth.SigningKey, true)
		if err != nil {
			return nil, err
		}
		if _, ok := ring.keys[k.ID]; !ok {
			return nil, &ConfigError{Key: "auth.signing_key.id", Message: fmt.Sprintf("%q is not among jwt.keys: tokens it signs would not verify", k.ID)}
		}
		return k, nil
	}
	if len(ring.keys) == 1 {
		for _, k := range ring.keys {
			if k.Secret {
				return k, nil
			}
		}
	}
	return nil, nil
}

func (s *Server) initNetwork() error {
	var err error
	if s.clientIPs.trusted, err = parsePrefixes(s.cfg.Network.TrustedProxies); err != nil {
		return err
	}
	n := s.cfg.Network
	if s.netAll, err = newNetRules(n.Allow, n.Block); err != nil {
		return err
	}
	if s.netAdmin, err = newNetRules(n.AdminAllow, n.AdminBlock); err != nil {
		return err
	}
	if s.netWS, err = newNetRules(n.WSAllow, n.WSBlock); err != nil {
		return err
	}
	if s.cfg.TLS.CertFile != "" {
		if _, err := readKeyFile(s.cfg.TLS.KeyFile); err != nil {
			return err
		}
		if _, err := tls.LoadX509KeyPair(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile); err != nil {
			return &ConfigError{Key: "tls", Message: err.Error()}
		}
	}
	s.corsOrigins = map[string]bool{}
	for _, o := range s.cfg.HTTP.CORSOrigins {
		s.corsOrigins[o] = true
	}
	return nil
}

// Handler is the HTTP handler of the API (for tests and benchmarks).
func (s *Server) Handler() http.Handler { return s.engine }

// Serve serves until ctx ends, then shuts down: stop accepting, let running
// commands finish within shutdown_grace, kill the rest, close every
// connection. It returns once every goroutine it started has ended.
func (s *Server) Serve(ctx context.Context) error {
	defer s.close()
	ln := s.deps.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
		}
	}
	guarded, err := s.wrapListener(ln)
	if err != nil {
		ln.Close()
		return err
	}
	ln = guarded
	s.httpSrv = &http.Server{
		Handler:           s.engine,
		ConnState:         connState, // tells the header guard when answers went out
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.HTTP.ReadTimeout,
		WriteTimeout:      s.cfg.HTTP.WriteTimeout,
		IdleTimeout:       s.cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    s.cfg.HTTP.MaxHeaderBytes * 2,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.httpSrv.RegisterOnShutdown(func() { s.stopOnce.Do(func() { close(s.stopping) }) })
	if s.cfg.TLS.CertFile != "" {
		// The listener terminates TLS (headerguard_tls.go); this tells
		// net/http to serve HTTP/2 on the connections that negotiated h2.
		s.httpSrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		s.httpSrv.ConnContext, s.httpSrv.Handler = tlsConnContext, withTLSState(s.engine)
	}
	metricsSrv, metricsLn, err := s.metricsServer()
	if err != nil {
		ln.Close()
		return err
	}
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Go(func() { errc <- s.serveHTTP(s.httpSrv, ln) })
	if metricsSrv != nil {
		wg.Go(func() { errc <- ignoreClosed(metricsSrv.Serve(metricsLn)) })
	}
	pollCtx, stopPoll := context.WithCancel(ctx)
	wg.Go(func() { s.pollPolicy(pollCtx) })
	wg.Go(func() { s.flushSuppressedLoop(pollCtx) })
	s.auditServer(ctx, EventServerStart, "")
	s.log.Info("serving", slog.String("listen", ln.Addr().String()), slog.Bool("dev", s.cfg.Dev))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopPoll()
	s.shutdown(metricsSrv)
	wg.Wait()
	s.flushSuppressed(ctx, time.Now(), true) // every count, also of windows still open
	close(errc)
	for err := range errc {
		if serveErr == nil {
			serveErr = err
		}
	}
	return serveErr
}

func (s *Server) serveHTTP(srv *http.Server, ln net.Listener) error {
	return ignoreClosed(srv.Serve(ln)) // with TLS, ln terminates it (wrapListener)
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// shutdown stops accepting, waits shutdown_grace for running commands, then
// kills them and closes every connection.
func (s *Server) shutdown(metricsSrv *http.Server) {
	s.draining.Store(true)
	// Close stopping before Shutdown returns, not only from the
	// RegisterOnShutdown hook (net/http runs hooks in their own goroutines):
	// once shutdown has begun, Stopping is observably closed.
	s.stopOnce.Do(func() { close(s.stopping) })
	s.auditServer(context.Background(), EventServerStop, "")
	graceCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	err := s.httpSrv.Shutdown(graceCtx)
	cancel()
	if err != nil {
		n := s.sessions.killAll()
		s.log.Warn("shutdown grace over: killing running commands", slog.Int("sessions", n))
		// The killed runs still answer (ended_by "killed"); then close.
		killCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if s.sessions.wait(killCtx) != nil {
			s.log.Error("commands still running after kill")
		}
		if s.httpSrv.Shutdown(killCtx) != nil {
			_ = s.httpSrv.Close()
		}
		cancel()
	}
	// Answers are out; sandboxes may still be tearing down (exec_run.go).
	teardownCtx, cancel := context.WithTimeout(context.Background(), teardownWait)
	if s.sessions.wait(teardownCtx) != nil {
		s.log.Error("sandbox teardowns still running at shutdown", slog.Int("sessions", s.sessions.count()))
	}
	cancel()
	if metricsSrv != nil {
		_ = metricsSrv.Close()
	}
}

// teardownWait bounds how long shutdown waits for the teardown of sandboxes
// whose commands have already answered.
const teardownWait = 15 * time.Second

func (s *Server) metricsServer() (*http.Server, net.Listener, error) {
	if s.deps.Registry == nil || (s.cfg.MetricsListen == "" && s.deps.MetricsListener == nil) {
		return nil, nil, nil
	}
	ln := s.deps.MetricsListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.MetricsListen); err != nil {
			return nil, nil, fmt.Errorf("listen metrics %s: %w", s.cfg.MetricsListen, err)
		}
	}
	rules, err := newNetRules(s.cfg.Network.MetricsAllow, s.cfg.Network.MetricsBlock)
	if err != nil {
		ln.Close()
		return nil, nil, &ConfigError{Key: "network.metrics_allow", Message: err.Error()}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(s.deps.Registry))
	return &http.Server{Handler: s.metricsGuard(rules, mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 8 << 10}, ln, nil
}

func (s *Server) auditServer(ctx context.Context, t EventType, msg string) {
	ev := Event{Type: t, Message: msg}
	if set := s.currentPolicy(); set != nil {
		ev.PolicyHash = set.Hash()
	}
	if err := s.audit.Record(ctx, ev); err != nil {
		s.log.Error("audit", slog.String("event", string(t)), slog.String("error", err.Error()))
	}
}

// close releases what New opened (the Redis client).
func (s *Server) close() {
	for _, c := range s.closers {
		_ = c()
	}
	s.closers = nil
}
