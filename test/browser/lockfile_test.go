package browser

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// exactVersion is a plain semantic version: no range, tag or URL.
var exactVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// TestLockfile checks, without Node.js, that the script's packages are
// pinned: package.json names exact versions, package-lock.json records
// them, and every package there carries the sha512 integrity hash npm ci
// verifies before installing it.
func TestLockfile(t *testing.T) {
	var manifest struct {
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	readJSON(t, "package.json", &manifest)
	if len(manifest.DevDependencies) != 0 {
		t.Errorf("package.json has devDependencies %v; list what the script needs in dependencies", manifest.DevDependencies)
	}
	if _, ok := manifest.Dependencies["playwright-core"]; !ok {
		t.Error("package.json does not depend on playwright-core")
	}

	var lock struct {
		LockfileVersion int `json:"lockfileVersion"`
		Packages        map[string]struct {
			Version      string            `json:"version"`
			Integrity    string            `json:"integrity"`
			Link         bool              `json:"link"`
			Dependencies map[string]string `json:"dependencies"`
		} `json:"packages"`
	}
	readJSON(t, "package-lock.json", &lock)
	if lock.LockfileVersion != 3 {
		t.Errorf("package-lock.json has lockfileVersion %d, want 3 (npm 9 or later)", lock.LockfileVersion)
	}
	root, ok := lock.Packages[""]
	if !ok {
		t.Fatal(`package-lock.json has no root package ("")`)
	}
	for name, version := range manifest.Dependencies {
		if !exactVersion.MatchString(version) {
			t.Errorf("package.json: %s is %q, want an exact version", name, version)
		}
		if got := root.Dependencies[name]; got != version {
			t.Errorf("package-lock.json's root: %s is %q, want %q as in package.json (run npm install)", name, got, version)
		}
		if got := lock.Packages["node_modules/"+name].Version; got != version {
			t.Errorf("package-lock.json installs %s %q, want %q", name, got, version)
		}
	}
	for path, p := range lock.Packages {
		if path == "" {
			continue
		}
		if !strings.HasPrefix(path, "node_modules/") || p.Link {
			t.Errorf("package-lock.json: %s is not a package from the registry", path)
		}
		if !strings.HasPrefix(p.Integrity, "sha512-") {
			t.Errorf("package-lock.json: %s has integrity %q, want a sha512 hash", path, p.Integrity)
		}
		if !exactVersion.MatchString(p.Version) {
			t.Errorf("package-lock.json: %s has version %q, want an exact version", path, p.Version)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
