package backend

import "testing"

func TestHomeAsTilde(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	for in, want := range map[string]string{
		"xla:/home/u/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so - PJRT plugin (/home/u/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81": "xla:~/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so - PJRT plugin (~/.local/lib/smi-gomlx/pjrt_c_api_cpu_plugin.so) v0.81",
		"xla:cpu - PJRT \"cpu\" plugin (/usr/lib/pjrt.so)": "xla:cpu - PJRT \"cpu\" plugin (/usr/lib/pjrt.so)",
		"/home/user2/x /home/u":                            "/home/user2/x /home/u", // another user's home; the home itself is no path into it
	} {
		if got := HomeAsTilde(in); got != want {
			t.Errorf("HomeAsTilde(%q) = %q, want %q", in, got, want)
		}
	}
	t.Setenv("HOME", "/")
	if got := HomeAsTilde("/x/y"); got != "/x/y" {
		t.Errorf("home /: %q", got)
	}
}
