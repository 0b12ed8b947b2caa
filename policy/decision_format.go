package policy

import (
	"fmt"
	"log/slog"
)

// A Decision's Env holds secret values. It is never encoded as JSON, and
// these methods keep it out of every fmt verb and slog handler too: only
// the variable names (EnvKeys) are printed.

// String describes the decision without any environment value.
func (d Decision) String() string {
	return fmt.Sprintf("{allowed:%t reason:%s rule:%s command:%s argv:%q cwd:%s env_keys:%v tty:%t policy_hash:%s}",
		d.Allowed, d.Reason, d.Rule.ID, d.Command, d.Argv, d.Cwd, d.EnvKeys, d.TTY, d.PolicyHash)
}

// GoString is String for %#v.
func (d Decision) GoString() string { return d.String() }

// LogValue is what slog logs for a decision: no environment values.
func (d Decision) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("allowed", d.Allowed),
		slog.String("reason", string(d.Reason)),
		slog.String("rule", d.Rule.ID),
		slog.String("command", d.Command),
		slog.Any("argv", d.Argv),
		slog.String("cwd", d.Cwd),
		slog.Any("env_keys", d.EnvKeys),
		slog.Bool("tty", d.TTY),
		slog.String("policy_hash", d.PolicyHash),
	)
}
