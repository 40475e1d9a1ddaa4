package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/routeguide/routeguide/internal/postgres/postgrestest"
)

// cluster is a PostgreSQL server of one test's own, which the test may stop
// and start without disturbing the server other tests share.
type cluster struct {
	bin  string // the directory of initdb, pg_ctl and postgres
	dir  string // data, log and unix socket, owned by the server's user
	port int
	cred *syscall.Credential // whom the server runs as; nil for the current user
	URL  string              // connects to the cluster's postgres database
}

// pgBinDir returns the directory of the PostgreSQL server's programs, or ""
// when they are not installed.
func pgBinDir() string {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); isFile(filepath.Join(dir, "initdb")) {
			return dir
		}
	}
	if path, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(path)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(found, func(a, b string) int { // the newest version last
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	if len(found) == 0 {
		return ""
	}
	return filepath.Dir(found[len(found)-1])
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// newCluster creates and starts a PostgreSQL cluster listening on a free
// port of 127.0.0.1, with fsync on and trust authentication; cleanup stops
// it at once and removes it. It skips t unless ROUTEGUIDE_TEST_POSTGRES is
// set and PostgreSQL's server programs are installed. initdb refuses to run
// as root, so as root the cluster runs as the postgres user.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	postgrestest.Require(t)
	c := &cluster{bin: pgBinDir()}
	if c.bin == "" {
		t.Skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed: looked for pg_config --bindir, initdb on PATH, /usr/lib/postgresql/*/bin")
	}
	var err error
	// Not t.TempDir: its parents are private to the current user.
	if c.dir, err = os.MkdirTemp("", "routeguide-pg-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(c.dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root, and there is no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c.run(t, "initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	c.start(t)
	t.Cleanup(func() {
		// Already stopped is fine; the directory goes next either way.
		c.cmd("pg_ctl", "-D", c.data(), "-m", "immediate", "stop").CombinedOutput()
	})
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// cmd returns the server program name with args, run as the server's user.
func (c *cluster) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *cluster) run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := c.cmd(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// start starts the server and returns once it accepts connections.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=on -c synchronous_commit=on", c.port, c.dir)
	c.run(t, "pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "30", "-o", opts, "start")
}

// stop stops the server in mode: "immediate" ends every process at once,
// as a crash would, "fast" ends sessions and checkpoints first.
func (c *cluster) stop(t *testing.T, mode string) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data(), "-m", mode, "-w", "-t", "30", "stop")
}

// log returns the server's log.
func (c *cluster) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	return string(b)
}
