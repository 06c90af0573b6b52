//go:build unix

package filetrust

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// nobody is an unprivileged uid that is not agentg's: the other local
// user of these tests. Chowning to it needs root.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the tests chown files to another user (uid 65534) to play the other local user")
	}
}

func TestReadSecret(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "target")
	os.WriteFile(good, []byte("s3cret"), 0o600)
	planted := filepath.Join(dir, "planted")
	os.WriteFile(planted, []byte("s3cret"), 0o600)
	os.Chown(planted, nobody, nobody)

	tests := []struct {
		name  string
		setup func(p string)
		rule  Rule
		want  string // "" for accepted; else a part of the error
	}{
		{"own 0600", func(p string) { write(p, 0o600) }, Generated, ""},
		{"own 0400", func(p string) { write(p, 0o400) }, Generated, ""},
		{"own 0640 generated", func(p string) { write(p, 0o640) }, Generated, "chmod 600"},
		{"own 0640 provided", func(p string) { write(p, 0o640) }, Provided, ""},
		{"own 0604 provided", func(p string) { write(p, 0o604) }, Provided, "chmod 600"},
		{"own 0602 provided", func(p string) { write(p, 0o602) }, Provided, "chmod 600"},
		{"other user's 0600", func(p string) { write(p, 0o600); os.Chown(p, nobody, nobody) }, Provided, "owned by uid 65534"},
		{"other user's, root group", func(p string) { write(p, 0o600); os.Chown(p, nobody, 0) }, Provided, "chown 0"},
		{"root-owned, other group", func(p string) { write(p, 0o600); os.Chown(p, 0, nobody) }, Provided, ""},
		{"symlink to own", func(p string) { os.Symlink(good, p) }, Generated, ""},
		{"symlink to other user's", func(p string) { os.Symlink(planted, p) }, Provided, "owned by uid 65534"},
		{"directory", func(p string) { os.Mkdir(p, 0o700) }, Provided, "not a regular file"},
		{"fifo", func(p string) { syscall.Mkfifo(p, 0o600) }, Provided, "not a regular file"},
		{"other user's, client", func(p string) { write(p, 0o600); os.Chown(p, nobody, nobody) }, Rule{Forbidden: 0o077, AnyOwner: true}, ""},
		{"other user's 0644, client", func(p string) { write(p, 0o644); os.Chown(p, nobody, nobody) }, Rule{Forbidden: 0o077, AnyOwner: true}, "chmod 600"},
		{"missing", func(p string) {}, Provided, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			tt.setup(p)
			b, err := ReadSecret("test secret", p, tt.rule)
			if tt.want == "" {
				if err != nil || string(b) != "s3cret" {
					t.Fatalf("ReadSecret: %q %v, want the secret", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadSecret: %q %v, want an error mentioning %q", b, err, tt.want)
			}
		})
	}
}

func write(p string, mode os.FileMode) {
	os.WriteFile(p, []byte("s3cret"), mode)
	os.Chmod(p, mode) // past the umask
}

func TestCheckDir(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name string
		// setup makes base's layout and returns the data directory.
		setup func(base string) string
		want  string
	}{
		{"own 0700", func(b string) string { return mkdir(b, "data", 0o700, -1) }, ""},
		{"own 0755", func(b string) string { return mkdir(b, "data", 0o755, -1) }, ""},
		{"not there yet", func(b string) string { return filepath.Join(b, "a", "data") }, ""},
		{"world-writable", func(b string) string { return mkdir(b, "data", 0o777, -1) }, "chmod 755"},
		{"group-writable", func(b string) string { return mkdir(b, "data", 0o770, -1) }, "chmod 750"},
		{"sticky world-writable", func(b string) string { return mkdir(b, "data", 0o777|fs.ModeSticky, -1) }, "has mode"},
		{"other user's", func(b string) string { return mkdir(b, "data", 0o700, nobody) }, "owned by uid 65534"},
		{"under a world-writable dir", func(b string) string {
			return filepath.Join(mkdir(b, "shared", 0o777, -1), "data")
		}, "chmod go-w"},
		{"made, under a world-writable dir", func(b string) string {
			return mkdir(mkdir(b, "shared", 0o777, -1), "data", 0o700, -1)
		}, "chmod go-w"},
		{"under a sticky world-writable dir", func(b string) string {
			return mkdir(mkdir(b, "tmp", 0o777|fs.ModeSticky, -1), "data", 0o700, -1)
		}, ""},
		{"under another user's dir", func(b string) string {
			return mkdir(mkdir(b, "home", 0o755, nobody), "data", 0o700, -1)
		}, "owned by uid 65534"},
		{"symlink to a world-writable dir", func(b string) string {
			d := mkdir(b, "real", 0o777, -1)
			os.Symlink(d, filepath.Join(b, "link"))
			return filepath.Join(b, "link")
		}, "has mode 0777"},
		{"a file", func(b string) string { p := filepath.Join(b, "f"); write(p, 0o600); return p }, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.setup(t.TempDir())
			err := CheckDir(dir)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckDir(%s): %v", dir, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckDir(%s): %v, want an error mentioning %q", dir, err, tt.want)
			}
			if tt.want != "not a directory" && !errors.Is(err, ErrUntrusted) {
				t.Errorf("error does not wrap ErrUntrusted: %v", err)
			}
		})
	}
}

// mkdir makes base/name with mode (set past the umask) and owner uid
// (-1: this process's) and returns it.
func mkdir(base, name string, mode fs.FileMode, uid int) string {
	p := filepath.Join(base, name)
	os.Mkdir(p, 0o700)
	os.Chmod(p, mode)
	if uid >= 0 {
		os.Chown(p, uid, uid)
	}
	return p
}
