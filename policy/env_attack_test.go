package policy

import "testing"

// TestClientEnvNeverSettable tries to let clients set variables that turn
// an allowed program into something else: each must be a load error
// (env_forbidden), whatever pattern the policy gives it.
func TestClientEnvNeverSettable(t *testing.T) {
	tests := []struct {
		name, variable string
	}{
		{"vi runs ex commands from EXINIT (:!sh)", "EXINIT"},
		{"vim runs VIMINIT", "VIMINIT"},
		{"vim reads MYVIMRC", "MYVIMRC"},
		{"vim runtime directory", "VIMRUNTIME"},
		{"less options from LESS", "LESS"},
		{"less secure mode switched off", "LESSSECURE"},
		{"less editor command", "LESSEDIT"},
		{"bash prompt runs $(...)", "PS1"},
		{"bash select prompt", "PS3"},
		{"getopt stops permuting (flags after positionals become positionals)", "POSIXLY_CORRECT"},
		{"coreutils obsolete option syntax (tail +5f)", "_POSIX2_VERSION"},
		{"time zone files from any directory", "TZDIR"},
		{"message catalogs (format strings) from any directory", "TEXTDOMAINDIR"},
		{"perl debugger", "PERL5DB"},
		{"perl unicode switches", "PERL_UNICODE"},
		{"ruby gems path", "RUBYGEMS_GEMDEPS"},
		{"node extra CA / options", "NODE_EXTRA_CA_CERTS"},
		{"lua runs LUA_INIT", "LUA_INIT"},
		{"grep options (old grep)", "GREP_OPTIONS"},
		{"tar options", "TAR_OPTIONS"},
		{"gzip options", "GZIP"},
		{"xz options", "XZ_OPT"},
		{"zstd options", "ZSTD_CLEVEL"},
		{"bzip2 options", "BZIP2"},
		{"openssl config loads engines", "OPENSSL_CONF"},
		{"terminfo search path", "TERMINFO_DIRS"},
		{"resolver options", "RES_OPTIONS"},
		{"history written anywhere", "HISTFILE"},
		{"man pager command", "MANPAGER"},
		{"java classpath", "CLASSPATH"},
		{"php ini directory", "PHPRC"},
		{"tcl/tk library", "TCLLIBPATH"},
		{"browser command", "BROWSER"},
		{"mixed case still refused", "Exinit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := minimalPolicy + "env: {client: {" + tt.variable + ": {pattern: '[a-z]{1,8}'}}}\n"
			el := loadErr(t, src, LoadOptions{})
			if !hasCode(el, CodeEnvForbidden, tt.variable) && !hasCode(el, CodeEnvForbidden, "") {
				t.Errorf("client variable %s: got errors %v, want %s", tt.variable, el, CodeEnvForbidden)
			}
		})
	}
}

// TestClientEnvOrdinaryAllowed: the forbidden list does not swallow
// harmless variables policies do offer.
func TestClientEnvOrdinaryAllowed(t *testing.T) {
	for _, v := range []string{"TZ", "COLUMNS", "LINES", "LC_TIME", "NO_COLOR"} {
		t.Run(v, func(t *testing.T) {
			src := minimalPolicy + "env: {client: {" + v + ": {pattern: '[a-z]{1,8}'}}}\n"
			if el := loadErr(t, src, LoadOptions{}); el != nil {
				t.Errorf("client variable %s: got errors %v, want none", v, el)
			}
		})
	}
}
