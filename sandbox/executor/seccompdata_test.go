package executor

import (
	"bytes"
	"testing"

	"github.com/execgate/execgate/policy"
)

// TestSeccompDataNotOnTheWire: a decision's profile carries the content of
// its custom seccomp file (policy.Profile.SeccompData) inside the root
// executor only; neither a result frame nor a denial sends it to the front.
func TestSeccompDataNotOnTheWire(t *testing.T) {
	const mark = "SECCOMP-CONTENT-MARK"
	prof := policy.Profile{Name: "p", Seccomp: "custom", SeccompFile: "/etc/execgate/p.json", SeccompData: []byte(`{"allow":["` + mark + `"]}`)}
	dec := policy.Decision{Allowed: true, Profile: &prof}
	res, err := marshalResult(resultMsg{Decision: dec})
	if err != nil {
		t.Fatal(err)
	}
	denied := errMsgFor(&DeniedError{Decision: dec})
	payloads := map[string][]byte{"result": res}
	if p, err := marshalResult(resultMsg{Decision: dec, Err: &denied}); err == nil {
		payloads["denial"] = p
	} else {
		t.Fatal(err)
	}
	for name, p := range payloads {
		if bytes.Contains(p, []byte(mark)) {
			t.Errorf("%s payload carries the seccomp content: %s", name, p)
		}
		var back resultMsg
		if err := decodeStrict(p, &back); err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if back.Decision.Profile == nil || back.Decision.Profile.SeccompFile != prof.SeccompFile || back.Decision.Profile.SeccompData != nil {
			t.Errorf("%s: got profile %+v, want the file's path and no data", name, back.Decision.Profile)
		}
	}
}
