package policy

import (
	"regexp"
	"sync"
)

// lazyRegexp is a regular expression compiled on first use. Package-level
// expressions compiled at start-up were paid by every process of the
// binary, including every sandbox's container init (libcontainer
// re-executes the binary), ~0.7 ms per start for this package.
type lazyRegexp struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

// newLazyRegexp returns expr, compiled (and checked, panicking as
// regexp.MustCompile does) on first use.
func newLazyRegexp(expr string) *lazyRegexp { return &lazyRegexp{expr: expr} }

func (l *lazyRegexp) get() *regexp.Regexp {
	l.once.Do(func() { l.re = regexp.MustCompile(l.expr) })
	return l.re
}

// MatchString is regexp.Regexp.MatchString.
func (l *lazyRegexp) MatchString(s string) bool { return l.get().MatchString(s) }

// FindStringSubmatch is regexp.Regexp.FindStringSubmatch.
func (l *lazyRegexp) FindStringSubmatch(s string) []string { return l.get().FindStringSubmatch(s) }

// String is the source text of the expression.
func (l *lazyRegexp) String() string { return l.expr }
