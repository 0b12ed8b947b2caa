package sandbox

import (
	"fmt"
	"log/slog"
	"strings"
)

// envKeys returns the names of KEY=VALUE entries, never their values.
func envKeys(env []string) []string {
	keys := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	return keys
}

// String describes a Spec for logs and errors. Spec.Env carries the
// policy's secrets, so only variable names are shown, never values.
func (s Spec) String() string {
	return fmt.Sprintf("{id:%s subject:%s argv:%q cwd:%s env_keys:%v mounts:%d profile:%s tty:%t}",
		s.ID, s.Subject, s.Argv, s.Cwd, envKeys(s.Env), len(s.Mounts), s.Profile.Name, s.TTY)
}

// GoString is String for %#v, so that no verb prints environment values.
func (s Spec) GoString() string { return s.String() }

// LogValue is what slog logs for a Spec: no environment values.
func (s Spec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID),
		slog.String("subject", s.Subject),
		slog.Any("argv", s.Argv),
		slog.String("cwd", s.Cwd),
		slog.Any("env_keys", envKeys(s.Env)),
		slog.String("profile", s.Profile.Name),
		slog.Bool("tty", s.TTY),
	)
}
