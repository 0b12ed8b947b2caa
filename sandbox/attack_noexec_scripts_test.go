package sandbox

import (
	"strings"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestAttackNoExecWorkScripts records what noexec_work does and does not
// stop for scripts (docs/sandbox.md, "Known limits"): a written script
// with a shebang cannot be executed itself, from the workspace or /tmp
// (the kernel checks the script's own mount), but an interpreter that is
// allowed to run reads and runs it.
func TestAttackNoExecWorkScripts(t *testing.T) {
	s := suite(t)
	o := runOpts{profile: func(p *policy.Profile) { p.NoExecWork = true }}
	out := s.sh(t, o, `for d in /work /tmp; do
  printf '#!/bin/sh\necho RAN\n' > $d/x.sh && chmod 755 $d/x.sh
  if r=$($d/x.sh 2>&1); then echo "direct $d: $r"; else echo "direct $d: refused"; fi
  echo "interpreter $d: $(sh $d/x.sh 2>&1)"
  rm -f $d/x.sh
done`)
	want := []string{"direct /work: refused", "interpreter /work: RAN", "direct /tmp: refused", "interpreter /tmp: RAN"}
	if got := lines(out.stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q (%v)", got, want, out)
	}
}
