package interop

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeDir holds the Node.js client, its package.json and the lockfile that
// pins @grpc/grpc-js and @grpc/proto-loader.
const nodeDir = "node"

// requireNode skips unless interop tests were asked for, and fails when they
// were but Node.js 20 or later cannot run the client. It installs the
// client's packages from the lockfile with npm ci when node_modules is
// missing or holds other versions, so a fresh checkout runs the test.
func requireNode(t *testing.T) string {
	t.Helper()
	if os.Getenv("ROUTEGUIDE_INTEROP") != "1" {
		t.Skip("set ROUTEGUIDE_INTEROP=1 to run the Node.js interop tests (needs Node.js 20 or later and npm)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("ROUTEGUIDE_INTEROP=1 but node is not on PATH (install Node.js 20 or later): %v", err)
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	version := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(version, ".", 2)[0], "v"))
	if err != nil || major < 20 {
		t.Fatalf("ROUTEGUIDE_INTEROP=1 but node is %s; the client needs Node.js 20 or later", version)
	}
	if !installed(t) {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatalf("ROUTEGUIDE_INTEROP=1 but %s/node_modules is missing or out of date and npm is not on PATH: %v", nodeDir, err)
		}
		// npm ci installs exactly what package-lock.json records and checks
		// each package's integrity hash; it fails when the lockfile and
		// package.json disagree. No install script is needed.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = nodeDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", nodeDir, err, out)
		}
	}
	return node
}

// lockedPackages is the part of package-lock.json, and of the copy npm keeps
// in node_modules/.package-lock.json, that says what is installed.
type lockedPackages struct {
	Packages map[string]struct {
		Version   string `json:"version"`
		Integrity string `json:"integrity"`
	} `json:"packages"`
}

// installed reports whether node_modules holds exactly the packages
// package-lock.json pins: npm records what it installed in
// node_modules/.package-lock.json.
func installed(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", ".package-lock.json"))
	if err != nil {
		return false
	}
	var have, want lockedPackages
	if json.Unmarshal(b, &have) != nil {
		return false
	}
	readJSON(t, filepath.Join(nodeDir, "package-lock.json"), &want)
	delete(want.Packages, "") // the client itself is not installed
	return reflect.DeepEqual(have.Packages, want.Packages)
}

// TestNodeClient runs the Node.js client, which loads protos/ at run time,
// against routeguide serve on a fresh store: every method, the streams
// included, checked answer by answer.
func TestNodeClient(t *testing.T) {
	node := requireNode(t)
	addr := startGoServer(t, "127.0.0.1:0")
	cmd := exec.Command(node, "client.mjs", addr)
	cmd.Dir = nodeDir
	checkGolden(t, run(t, cmd), "testdata/node_client.golden")
}

// TestNodeSeedClient runs the Node.js client with the seed's own proto files
// (no package, service RouteGuide): a client built from them works against
// routeguide serve unchanged.
func TestNodeSeedClient(t *testing.T) {
	node := requireNode(t)
	addr := startGoServer(t, "127.0.0.1:0")
	cmd := exec.Command(node, "client.mjs", "--seed", addr)
	cmd.Dir = nodeDir
	checkGolden(t, run(t, cmd), "testdata/node_seed_client.golden")
}

// checkGolden compares what a client printed with the golden file: one line
// per check, so a check that stops running is noticed too.
func checkGolden(t *testing.T, got, golden string) {
	t.Helper()
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("the Node.js client printed:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}
