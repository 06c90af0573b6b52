package test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The top-level Dockerfile builds, and the image runs agentg as a non-root
// user. It needs a running Docker engine; without one it skips.
func TestDockerImage(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker is not installed: the Dockerfile is not built")
	}
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine runs (docker info: %v): the Dockerfile is not built\n%s", err, out)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	tag := "agentg-test:" + time.Now().Format("20060102150405")
	if out, err := exec.Command("docker", "build", "-t", tag, root).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })
	out, err := exec.Command("docker", "run", "--rm", tag, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agentg") {
		t.Fatalf("docker run %s version: %v\n%s", tag, err, out)
	}
	out, err = exec.Command("docker", "image", "inspect", "-f", "{{.Config.User}} {{json .Config.Volumes}}", tag).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "65532") || !strings.Contains(string(out), "/data") {
		t.Fatalf("image user and volumes: %v %s", err, out)
	}
}
