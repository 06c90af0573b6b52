// Package buildinfo says which agentg a binary is: the module version,
// the revision of the source it was built from and that revision's time,
// whether the tree had uncommitted changes, when it was built, and with
// which Go. It reads the binary's own build information (what `go build`
// and `go install module@version` record) once, and takes what a release
// build stamps with -ldflags over it.
//
// The contract: Read never fails; what is unknown reads as "" (or false),
// and the version is never empty ("dev" when nothing says otherwise), so
// `agentg version`, the serving line and the agentg_build_info metric all
// name the same binary the same way.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info is one binary's identity.
type Info struct {
	// Version is the stamped version (-X main.version=v1.2.3), else the
	// module version `go install …@v1.2.3` recorded, else "dev".
	Version string
	// Revision is the VCS revision the binary was built from (a full
	// hash), "" when the build did not record one (go run, -buildvcs=false).
	Revision string
	// RevisionTime is that revision's commit time (RFC 3339).
	RevisionTime string
	// Modified says the source tree had uncommitted changes.
	Modified bool
	// Built is when the binary was built, when the build stamped it
	// (-X main.buildTime=…); Go records no build time of its own, so that
	// builds stay reproducible.
	Built string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's Info. stamped and built are what the
// build gave main through -ldflags ("" or "dev" when it gave nothing).
func Read(stamped, built string) Info {
	info := Info{Version: stamped, Built: built, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		info.fill(bi)
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// fill takes what bi recorded.
func (i *Info) fill(bi *debug.BuildInfo) {
	if (i.Version == "" || i.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		i.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.time":
			i.RevisionTime = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
}

// Short is the revision's first 12 characters (as git and go list show
// it), or "".
func (i Info) Short() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}

// String is the one line `agentg version` prints:
//
//	agentg v1.2.3 (revision 0123456789ab of 2026-12-07T10:00:00Z, modified; built 2026-12-07T11:00:00Z; go1.26.0)
func (i Info) String() string {
	var parts []string
	if r := i.Short(); r != "" {
		rev := "revision " + r
		if i.RevisionTime != "" {
			rev += " of " + i.RevisionTime
		}
		if i.Modified {
			rev += ", modified"
		}
		parts = append(parts, rev)
	}
	if i.Built != "" {
		parts = append(parts, "built "+i.Built)
	}
	parts = append(parts, i.GoVersion)
	return fmt.Sprintf("agentg %s (%s)", i.Version, strings.Join(parts, "; "))
}
