package policy

// ReasonCode is a stable, documented code saying why a decision came out as
// it did. Clients see it; docs/policy.md lists every one.
type ReasonCode string

// The reason codes. Adding one means documenting it in docs/policy.md.
const (
	ReasonAllowed          ReasonCode = "allowed"
	ReasonUnknownCommand   ReasonCode = "unknown_command"
	ReasonRoleForbidden    ReasonCode = "role_forbidden"
	ReasonUnknownSubcmd    ReasonCode = "unknown_subcommand"
	ReasonFlagNotAllowed   ReasonCode = "flag_not_allowed"
	ReasonFlagDenied       ReasonCode = "flag_denied"
	ReasonBadFlagValue     ReasonCode = "bad_flag_value"
	ReasonBadArgument      ReasonCode = "bad_argument"
	ReasonTooManyArguments ReasonCode = "too_many_arguments"
	ReasonTooFewArguments  ReasonCode = "too_few_arguments"
	ReasonArgumentTooLong  ReasonCode = "argument_too_long"
	ReasonRequestTooLarge  ReasonCode = "request_too_large"
	ReasonControlCharacter ReasonCode = "control_character"
	ReasonInvalidUTF8      ReasonCode = "invalid_utf8"
	ReasonShellSyntax      ReasonCode = "shell_metacharacter"
	ReasonBadCmdline       ReasonCode = "bad_cmdline"
	ReasonPathOutsideRoot  ReasonCode = "path_outside_root"
	ReasonPathNotFound     ReasonCode = "path_not_found"
	ReasonEnvNotAllowed    ReasonCode = "env_not_allowed"
	ReasonBadSubject       ReasonCode = "bad_subject"
	ReasonTTYNotAllowed    ReasonCode = "tty_not_allowed"
)

// ReasonInternal is a denial because deciding failed unexpectedly (a bug);
// it is deny by default, never an allow.
const ReasonInternal ReasonCode = "internal_error"
