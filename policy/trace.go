package policy

// tracer records the rules considered when a Request asks for a trace.
// Details never carry argument values, environment values or secrets.
type tracer struct {
	on    bool
	steps []TraceStep
}

func (t *tracer) add(rule RuleRef, outcome, detail string) {
	if t.on {
		t.steps = append(t.steps, TraceStep{Rule: rule, Outcome: outcome, Detail: detail})
	}
}
