package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFill(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-12-07T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name    string
		stamped string
		built   string
		bi      debug.BuildInfo
		want    string
	}{
		{
			name: "checkout build",
			bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			want: "agentg dev (revision 0123456789ab of 2026-12-07T10:00:00Z, modified; go1.26.0)",
		},
		{
			name: "go install at a version",
			bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.4.0"}},
			want: "agentg v0.4.0 (go1.26.0)",
		},
		{
			name:    "stamped release wins over the module version",
			stamped: "v0.5.0", built: "2026-12-07T11:00:00Z",
			bi:   debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v0.4.0"}, Settings: vcs[:2]},
			want: "agentg v0.5.0 (revision 0123456789ab of 2026-12-07T10:00:00Z; built 2026-12-07T11:00:00Z; go1.26.0)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := Info{Version: tt.stamped, Built: tt.built}
			i.fill(&tt.bi)
			if i.Version == "" {
				i.Version = "dev"
			}
			if got := i.String(); got != tt.want {
				t.Errorf("String() = %q\nwant       %q", got, tt.want)
			}
		})
	}
}

// TestReadTestBinary reads the test binary's own build information: a
// version is never empty, and the Go version is the running one's.
func TestReadTestBinary(t *testing.T) {
	i := Read("", "")
	if i.Version == "" || i.GoVersion == "" {
		t.Fatalf("Read = %+v: version and Go version must be set", i)
	}
}
