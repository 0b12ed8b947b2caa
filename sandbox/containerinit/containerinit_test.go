package containerinit

import "testing"

func TestIsInit(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want bool
	}{
		{"init", []string{"/usr/bin/execgate", "init"}, true},
		{"init with more", []string{"execgate", "init", "x"}, true},
		{"no args", []string{"execgate"}, false},
		{"empty", nil, false},
		{"other verb", []string{"execgate", "serve"}, false},
		{"init later", []string{"execgate", "run", "init"}, false},
		{"prefix", []string{"execgate", "initx"}, false},
		{"case", []string{"execgate", "INIT"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsInit(tt.args); got != tt.want {
				t.Errorf("IsInit(%q): got %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}
