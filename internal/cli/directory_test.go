package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDirectoryCommands runs a scripted session of the directory commands
// against one server; each step's output is a golden file.
func TestDirectoryCommands(t *testing.T) {
	addr := startServer(t)
	env := map[string]string{"ROUTEGUIDE_ADDR": addr}
	steps := []struct {
		name  string
		stdin string
		args  []string
	}{
		{name: "add", args: []string{"add", "--name", "Carol", "--age", "41", "--gender", "female", "--hobby", "chess", "--hobby", "go", "--street", "1 Oak St", "--city", "Boston"}},
		{name: "add_exists", args: []string{"add", "--name", "Carol"}},
		{name: "add_invalid", args: []string{"add", "--name", "Zed", "--age", "200", "--hobby", ""}},
		{name: "add_no_name", args: []string{"add", "--age", "3"}},
		{name: "add_bad_gender", args: []string{"add", "--name", "Zed", "--gender", "robot"}},
		{name: "update", args: []string{"update", "Carol", "--age", "42", "--city", "Austin"}},
		{name: "update_clear_hobbies", args: []string{"update", "Carol", "--clear-hobbies", "-o", "json"}},
		{name: "update_nobody", args: []string{"update", "Nobody", "--age", "3"}},
		{name: "update_nothing", args: []string{"update", "Carol"}},
		{name: "update_clear_hobbies_false", args: []string{"update", "Carol", "--clear-hobbies=false"}},
		{name: "update_if_match_stale", args: []string{"update", "Carol", "--age", "50", "--if-match", "0123456789abcdef"}},
		{name: "delete_if_match_stale", args: []string{"delete", "Carol", "--if-match", "0123456789abcdef"}},
		{name: "delete_if_match_two_names", args: []string{"delete", "Carol", "Bob", "--if-match", "0123456789abcdef"}},
		{name: "history", args: []string{"history", "Carol"}},
		{name: "history_nobody", args: []string{"history", "Nobody"}},
		{name: "list", args: []string{"list"}},
		{name: "list_json_city", args: []string{"list", "-o", "json", "--city", "New York"}},
		{name: "import_jsonl", args: []string{"import", "testdata/import/people.jsonl"}},
		{name: "import_jsonl_again", args: []string{"import", "testdata/import/people.jsonl"}},
		{name: "import_csv", args: []string{"import", "-o", "json", "testdata/import/people.csv"}},
		{name: "import_stdin", stdin: `{"name":"Quinn","age":9}` + "\n", args: []string{"import", "-"}},
		{name: "import_bad_age", args: []string{"import", "testdata/import/bad_age.jsonl"}},
		{name: "import_bad_json", args: []string{"import", "testdata/import/bad_json.jsonl"}},
		{name: "import_bad_header", args: []string{"import", "testdata/import/bad_header.csv"}},
		{name: "import_bad_field", args: []string{"import", "testdata/import/bad_field.csv"}},
		{name: "import_missing_file", args: []string{"import", "testdata/import/nope.jsonl"}},
		{name: "list_after_imports", args: []string{"list"}},
		{name: "list_filters", args: []string{"list", "--city", "Boston", "--hobby", "chess", "--prefix", "G"}},
		{name: "list_limit", args: []string{"list", "--limit", "2"}},
		{name: "delete", args: []string{"delete", "Carol", "Ghost", "Dan", "Not Found"}},
		{name: "delete_nobody", args: []string{"delete", "Carol"}},
		{name: "export", args: []string{"export"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			checkGolden(t, "directory_"+st.name, scrubOrigin(runCLI(t, env, st.stdin, st.args...).golden(addr)))
		})
	}
}

// TestExportImportRoundTrip checks that what export writes, import reads back
// unchanged into another server.
func TestExportImportRoundTrip(t *testing.T) {
	from, to := startServer(t), startServer(t)
	if r := runCLI(t, nil, "", "import", "--addr", from, "testdata/import/people.csv"); r.code != 0 {
		t.Fatalf("import: %+v", r)
	}
	file := filepath.Join(t.TempDir(), "people.jsonl")
	if r := runCLI(t, nil, "", "export", "--addr", from, file); r.code != 0 {
		t.Fatalf("export: %+v", r)
	}
	if r := runCLI(t, nil, "", "delete", "--addr", to, "Alice", "Bob"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if r := runCLI(t, nil, "", "import", "--addr", to, file); r.code != 0 {
		t.Fatalf("import the export: %+v", r)
	}
	again := runCLI(t, nil, "", "export", "--addr", to)
	want, _ := os.ReadFile(file)
	if again.stdout != string(want) {
		t.Errorf("export after the round trip:\n%s\nwant:\n%s", again.stdout, want)
	}
}

// TestWatchCommand checks that watch prints changes as they happen.
func TestWatchCommand(t *testing.T) {
	addr := startServer(t)
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r, w := io.Pipe()
			done := make(chan int, 1)
			go func() {
				done <- Run(ctx, []string{"watch", "--current", "--addr", addr, "-o", output}, noEnv, strings.NewReader(""), w, io.Discard)
				w.Close()
			}()
			lines := bufio.NewScanner(r)
			next := func() string {
				t.Helper()
				got := make(chan string, 1)
				go func() {
					if lines.Scan() {
						got <- lines.Text()
					}
					close(got)
				}()
				select {
				case l := <-got:
					return l
				case <-time.After(10 * time.Second):
					t.Fatal("no watch line within 10s")
					return ""
				}
			}
			var got []string
			for range 3 { // Alice, Bob, synced
				got = append(got, next())
			}
			name := "Watcher-" + output
			if res := runCLI(t, nil, "", "add", "--addr", addr, "--name", name, "--age", "5"); res.code != 0 {
				t.Fatalf("add: %+v", res)
			}
			got = append(got, next())
			if res := runCLI(t, nil, "", "delete", "--addr", addr, name); res.code != 0 {
				t.Fatalf("delete: %+v", res)
			}
			got = append(got, next())
			cancel()
			if code := <-done; code != exitOK {
				t.Errorf("watch exited %d after an interrupt, want 0", code)
			}
			go io.Copy(io.Discard, r)
			checkGolden(t, "watch_"+output, scrubOrigin(strings.Join(got, "\n")+"\n"))
		})
	}
}

// The parts of a change's origin that differ from run to run: the client's
// port, its request ids and the time.
var (
	peerPort  = regexp.MustCompile(`127\.0\.0\.1:[0-9]+`)
	requestID = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	rfc3339   = regexp.MustCompile(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z`)
)

// scrubOrigin replaces in s what scrubbing's patterns match with fixed
// words, for golden files.
func scrubOrigin(s string) string {
	s = peerPort.ReplaceAllString(s, "PEER")
	s = requestID.ReplaceAllString(s, "REQUEST-ID")
	return rfc3339.ReplaceAllString(s, "TIME")
}
