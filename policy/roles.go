package policy

// mayRun reports whether any caller role (expanded through includes)
// is one of the grammar's roles.
func (s *Set) mayRun(callerRoles []string, g *Grammar) bool {
	for _, cr := range callerRoles {
		role, ok := s.roles[cr]
		if !ok {
			continue // a role the policy does not declare grants nothing
		}
		for _, r := range role.Closure {
			for _, gr := range g.Roles {
				if r == gr {
					return true
				}
			}
		}
	}
	return false
}

// mayRunAny reports whether the caller may run g or any subcommand below.
func (s *Set) mayRunAny(callerRoles []string, g *Grammar) bool {
	if s.mayRun(callerRoles, g) {
		return true
	}
	for _, sub := range g.Subcommands {
		if s.mayRunAny(callerRoles, &sub.Grammar) {
			return true
		}
	}
	return false
}

// expandRoles returns the caller's roles with everything they include,
// dropping roles the policy does not declare.
func (s *Set) expandRoles(callerRoles []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, cr := range callerRoles {
		if role, ok := s.roles[cr]; ok {
			for _, r := range role.Closure {
				if !seen[r] {
					seen[r] = true
					out = append(out, r)
				}
			}
		}
	}
	return out
}
