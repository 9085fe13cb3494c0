package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is vipd's module, whose root Build looks for.
const modulePath = "github.com/vipd/vipd"

// Build compiles vipd into dir/vipd and returns the binary's absolute path.
// It runs `go build` from the module root, found by walking up from the
// working directory, so it works from any package's test.
func Build(dir string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("build vipd: %w", err)
	}
	root, err := moduleRoot(wd)
	if err != nil {
		return "", fmt.Errorf("build vipd: %w", err)
	}
	out, err := filepath.Abs(filepath.Join(dir, "vipd"))
	if err != nil {
		return "", fmt.Errorf("build vipd: %w", err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build vipd: %w", err)
	}
	cmd := exec.Command(goTool, "build", "-o", out, "./cmd/vipd")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vipd: go build -o %s ./cmd/vipd in %s: %w: %s",
			out, root, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}

// moduleRoot returns the nearest directory at or above dir whose go.mod
// declares vipd's module.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		path, err := readModulePath(filepath.Join(d, "go.mod"))
		if err == nil && path == modulePath {
			return d, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod for %s at or above %s", modulePath, dir)
		}
		d = parent
	}
}

// readModulePath returns the module path a go.mod declares.
func readModulePath(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", gomod, err)
	}
	return "", nil
}
