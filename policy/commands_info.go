package policy

// CommandInfo describes, JSON-friendly, a command some roles may run and
// its argument grammar (GET /v1/commands renders it). It shows what the
// caller may send, not how the policy is written: no file positions, no
// host paths, no deny lists, no environment values.
type CommandInfo struct {
	Name        string           `json:"name"`
	Description string           `json:"description,omitempty"`
	Flags       []FlagInfo       `json:"flags,omitempty"`
	Positionals *PositionalsInfo `json:"positionals,omitempty"`
	Subcommands []CommandInfo    `json:"subcommands,omitempty"`
	TTY         bool             `json:"tty"`
	EnvKeys     []string         `json:"env,omitempty"` // variables the client may set
}

// FlagInfo is an allowed flag.
type FlagInfo struct {
	Names []string `json:"names"`
	Value *Value   `json:"value,omitempty"` // nil for a flag without value
	Forms []string `json:"forms,omitempty"`
}

// PositionalsInfo is the positional grammar.
type PositionalsInfo struct {
	Min   int     `json:"min"`
	Max   int     `json:"max"`
	Items []Value `json:"items,omitempty"`
	Rest  *Value  `json:"rest,omitempty"`
}

// CommandsFor lists, sorted by name, the commands the roles may run (with
// only the subcommands they may run).
func (s *Set) CommandsFor(roles []string) []CommandInfo {
	var out []CommandInfo
	for _, c := range s.cmdList {
		if !s.mayRunAny(roles, &c.Grammar) {
			continue
		}
		info := s.grammarInfo(roles, &c.Grammar)
		info.TTY = s.profiles[c.Profile].TTY
		info.EnvKeys = sortedKeys(c.Env.Client)
		out = append(out, info)
	}
	return out
}

func (s *Set) grammarInfo(roles []string, g *Grammar) CommandInfo {
	info := CommandInfo{Name: g.Name, Description: g.Description}
	for _, f := range g.Flags {
		fi := FlagInfo{Names: f.Names, Forms: f.Forms}
		if f.Value.Type != TypeNone {
			v := f.Value
			fi.Value = &v
		}
		info.Flags = append(info.Flags, fi)
	}
	if p := g.Positionals; p.Max > 0 {
		info.Positionals = &PositionalsInfo{Min: p.Min, Max: p.Max, Items: p.Items, Rest: p.Rest}
	}
	for _, sub := range g.Subcommands {
		if s.mayRunAny(roles, &sub.Grammar) {
			info.Subcommands = append(info.Subcommands, s.grammarInfo(roles, &sub.Grammar))
		}
	}
	return info
}
