package keyvalue

import "runtime/debug"

// modulePath is the library's module path.
const modulePath = "github.com/keyvalue-go/keyvalue"

// Version returns the version of the keyvalue module linked into the
// running program, from its build information: "v0.1.0" for a program
// that requires keyvalue v0.1.0, "(devel)" when keyvalue is built from a
// checkout or a workspace, "(unknown)" when the program carries no build
// information.
func Version() string {
	info, _ := debug.ReadBuildInfo()
	return versionIn(info)
}

// versionIn finds the library's version in info (nil: none).
func versionIn(info *debug.BuildInfo) string {
	if info == nil {
		return "(unknown)"
	}
	if info.Main.Path == modulePath {
		return orDevel(info.Main.Version)
	}
	for _, d := range info.Deps {
		if d.Path != modulePath {
			continue
		}
		if d.Replace != nil {
			return orDevel(d.Replace.Version)
		}
		return orDevel(d.Version)
	}
	return "(unknown)"
}

func orDevel(v string) string {
	if v == "" {
		return "(devel)"
	}
	return v
}
