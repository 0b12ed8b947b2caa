package policy

// reasonMessages are the client-safe messages: one fixed sentence per
// reason, revealing nothing of the policy beyond the reason itself.
var reasonMessages = map[ReasonCode]string{
	ReasonAllowed:          "allowed",
	ReasonUnknownCommand:   "unknown command",
	ReasonRoleForbidden:    "your roles do not allow this command",
	ReasonUnknownSubcmd:    "unknown or missing subcommand",
	ReasonFlagNotAllowed:   "a flag is not allowed",
	ReasonFlagDenied:       "a flag is denied",
	ReasonBadFlagValue:     "a flag value is not allowed",
	ReasonBadArgument:      "an argument is not allowed",
	ReasonTooManyArguments: "too many arguments",
	ReasonTooFewArguments:  "too few arguments",
	ReasonArgumentTooLong:  "an argument is too long",
	ReasonRequestTooLarge:  "the arguments are too large in total",
	ReasonControlCharacter: "an argument contains a control character",
	ReasonInvalidUTF8:      "an argument is not valid UTF-8",
	ReasonShellSyntax:      "an argument contains a shell metacharacter",
	ReasonBadCmdline:       "the command line cannot be split safely",
	ReasonPathOutsideRoot:  "a path is outside the allowed directories",
	ReasonPathNotFound:     "a path does not exist",
	ReasonEnvNotAllowed:    "an environment variable is not allowed",
	ReasonBadSubject:       "the subject is not acceptable",
	ReasonTTYNotAllowed:    "a terminal is not allowed for this command",
	ReasonInternal:         "internal error",
}

// Message returns the client-safe message of a reason code.
func (r ReasonCode) Message() string {
	if m, ok := reasonMessages[r]; ok {
		return m
	}
	return "denied"
}

// ReasonCodes lists every reason code (for docs and tests).
func ReasonCodes() []ReasonCode {
	out := make([]ReasonCode, 0, len(reasonMessages))
	for r := range reasonMessages {
		out = append(out, r)
	}
	sortReasons(out)
	return out
}

func sortReasons(rs []ReasonCode) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j] < rs[j-1]; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}
