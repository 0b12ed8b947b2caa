package policy

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = newLazyRegexp(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// forbiddenClientEnv are variables a client may never set, whatever the
// policy says: they change how the loader, shells, interpreters, editors,
// pagers or git behave (code execution, config injection, path hijacking,
// a different option syntax).
var forbiddenClientEnv = map[string]bool{
	"PATH": true, "HOME": true, "SHELL": true, "IFS": true, "ENV": true, "BASH_ENV": true,
	"CDPATH": true, "PS1": true, "PS2": true, "PS3": true, "PS4": true, "PROMPT_COMMAND": true,
	"SHELLOPTS": true, "BASHOPTS": true, "HISTFILE": true, "GLOBIGNORE": true,
	"TMPDIR": true, "EDITOR": true, "VISUAL": true, "PAGER": true, "MANPAGER": true, "MANOPT": true,
	"BROWSER": true, "TERMCAP": true, "GCONV_PATH": true, "LOCPATH": true, "NLSPATH": true,
	"TEXTDOMAINDIR": true, "TZDIR": true, "HOSTALIASES": true, "RESOLV_HOST_CONF": true,
	"RES_OPTIONS": true, "LOCALDOMAIN": true, "POSIXLY_CORRECT": true, "_POSIX2_VERSION": true,
	"EXINIT": true, "MYVIMRC": true, "GVIMINIT": true, "LUA_INIT": true, "LUA_PATH": true,
	"LUA_CPATH": true, "GREP_OPTIONS": true, "TAR_OPTIONS": true, "GZIP": true, "BZIP2": true,
	"BZIP": true, "XZ_OPT": true, "XZ_DEFAULTS": true, "ZIPOPT": true, "UNZIP": true,
	"OPENSSL_CONF": true, "OPENSSL_ENGINES": true, "CLASSPATH": true, "PHPRC": true,
	"PHP_INI_SCAN_DIR": true, "TCLLIBPATH": true, "ZDOTDIR": true, "INPUTRC": true,
	"MAIL": true, "USER": true, "LOGNAME": true,
}

// forbiddenClientEnvPrefixes: any variable starting with one of these.
var forbiddenClientEnvPrefixes = []string{
	"LD_", "GIT_", "BASH_FUNC_", "PYTHON", "MALLOC_", "GLIBC_", "SSH_", "XDG_", "DYLD_",
	"LESS", "VIM", "PERL", "RUBY", "NODE_", "JAVA_", "_JAVA_", "JDK_", "TERMINFO", "ZSTD_",
	"KRB5", "SSL_", "CURL_", "NPM_CONFIG_", "GEM_",
}

// clientEnvForbidden reports whether no policy may let clients set name.
func clientEnvForbidden(name string) bool {
	u := strings.ToUpper(name)
	if forbiddenClientEnv[u] {
		return true
	}
	for _, p := range forbiddenClientEnvPrefixes {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// checkSecretsFiles reads each file's secrets file (at load: a reload with a
// bad file keeps the old set).
func (l *loader) checkSecretsFiles() {
	for _, pf := range l.files {
		if pf.f.SecretsFile == "" || l.opts.WithoutSecrets {
			continue
		}
		m, err := readSecretsFile(pf.f.SecretsFile)
		if err != nil {
			l.errAt(pf, "secrets_file", CodeSecretsFile, "%v", err)
			continue
		}
		l.secrets[pf] = m
	}
}

func (l *loader) checkEnvs() {
	for _, pf := range l.files {
		if pf.f.Env != nil {
			l.checkEnv(pf, "env", pf.f.Env)
		}
	}
}

// checkEnv validates one env block.
func (l *loader) checkEnv(pf *parsedFile, path string, e *FileEnv) {
	where := map[string]string{}
	note := func(kind, name string) {
		p := path + "." + kind + "." + name
		if !envNameRE.MatchString(name) {
			l.errAt(pf, p, CodeBadEnv, "variable name %q is not valid", name)
		}
		if prev, ok := where[name]; ok {
			l.errAt(pf, p, CodeBadEnv, "variable %q is also under %s", name, prev)
		}
		where[name] = kind
	}
	for _, k := range sortedKeys(e.Set) {
		note("set", k)
		if strings.ContainsAny(e.Set[k], "\x00\n\r") {
			l.errAt(pf, path+".set."+k, CodeBadEnv, "value of %q has a control character", k)
		}
	}
	for _, k := range sortedKeys(e.Client) {
		note("client", k)
		p := path + ".client." + k
		if clientEnvForbidden(k) {
			l.errAt(pf, p, CodeEnvForbidden, "clients may never set %q", k)
		}
		if cv := e.Client[k]; cv == nil || cv.Pattern == "" {
			l.errAt(pf, p, CodeRequired, "client variable %q needs a pattern", k)
		} else if _, err := l.compileRegex(cv.Pattern); err != nil {
			l.errAt(pf, p+".pattern", CodeBadRegex, "pattern %q does not compile: %v", cv.Pattern, err)
		}
	}
	for _, k := range sortedKeys(e.Secrets) {
		note("secrets", k)
		l.checkSecretRef(pf, path+".secrets."+k, e.Secrets[k])
	}
}

func (l *loader) checkSecretRef(pf *parsedFile, path, key string) {
	if pf.f.SecretsFile == "" {
		l.errAt(pf, path, CodeSecretMissing, "secrets need secrets_file in the same file")
		return
	}
	m, ok := l.secrets[pf]
	if !ok {
		return // the file itself failed (reported once), or was not read (WithoutSecrets)
	}
	if _, ok := m[key]; !ok {
		l.errAt(pf, path, CodeSecretMissing, "key %q is not in the secrets file", key)
	}
}

// mergeEnv compiles a file env and a command env into one Env (the
// command wins).
func (l *loader) mergeEnv(pf *parsedFile, envs ...*FileEnv) Env {
	out := Env{Set: map[string]string{}, Client: map[string]string{}, Secrets: map[string]string{},
		clientRE: map[string]*regexp.Regexp{}, secretValues: map[string]string{}}
	for _, e := range envs {
		if e == nil {
			continue
		}
		for k, v := range e.Set {
			delete(out.Client, k)
			delete(out.Secrets, k)
			out.Set[k] = v
		}
		for k, cv := range e.Client {
			delete(out.Set, k)
			delete(out.Secrets, k)
			out.Client[k] = cv.Pattern
		}
		for k, key := range e.Secrets {
			delete(out.Set, k)
			delete(out.Client, k)
			out.Secrets[k] = key
		}
	}
	for k, p := range out.Client {
		out.clientRE[k], _ = l.compileRegex(p)
	}
	for k, key := range out.Secrets {
		out.secretValues[k] = l.secrets[pf][key]
	}
	out.base, out.baseKeys, _ = out.buildEnv(nil)
	return out
}

// buildEnv returns the final KEY=VALUE environment (sorted) and its keys,
// or the name of a client variable that is not allowed.
func (e *Env) buildEnv(client map[string]string) (env, keys []string, bad string) {
	if len(client) == 0 && e.base != nil {
		return append([]string(nil), e.base...), append([]string(nil), e.baseKeys...), ""
	}
	vals := make(map[string]string, len(e.Set)+len(client)+len(e.secretValues))
	for k, v := range e.Set {
		vals[k] = v
	}
	for _, k := range sortedKeys(client) {
		re, ok := e.clientRE[k]
		if !ok || !re.MatchString(client[k]) || !cleanEnvValue(client[k]) {
			return nil, nil, k
		}
		vals[k] = client[k]
	}
	for k, v := range e.secretValues {
		vals[k] = v
	}
	keys = sortedKeys(vals)
	env = make([]string, len(keys))
	for i, k := range keys {
		env[i] = k + "=" + vals[k]
	}
	return env, keys, ""
}

func cleanEnvValue(v string) bool {
	return checkChars(v, false) == ""
}

// describeEnv is a short, value-free description for traces.
func describeEnv(name string) string { return fmt.Sprintf("client variable %s", name) }

// String describes the environment without any secret value, so that a
// compiled command printed with %v or %+v never leaks one.
func (e Env) String() string {
	return fmt.Sprintf("{set:%v client:%v secrets:%v}", e.Set, e.Client, e.Secrets)
}

// GoString is String for %#v.
func (e Env) GoString() string { return e.String() }
