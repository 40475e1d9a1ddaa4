package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesUnusableTokens checks that a tokens file that would leave
// authentication off, or ambiguous, stops serve before it serves.
func TestServeRefusesUnusableTokens(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty.txt":    "",
		"comments.txt": "# TOKEN NAME ROLE\n\n",
		"twice.txt":    "reader-token-0123456789 rita reader\nreader-token-0123456789 wes writer\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			os.WriteFile(path, []byte(content), 0o600)
			// Were the file accepted, serve would run until this deadline
			// and exit 0.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			code := Run(ctx, []string{"serve", "--store", "memory", "--addr", "127.0.0.1:0", "--tokens", path}, noEnv, strings.NewReader(""), &bytes.Buffer{}, &stderr)
			if code == exitOK || !strings.Contains(stderr.String(), path) {
				t.Errorf("serve --tokens %s: exit %d, stderr %q; want a failure naming the file", name, code, stderr.String())
			}
			if strings.Contains(stderr.String(), "serving RouteGuide") || strings.Contains(stderr.String(), "token-0123") {
				t.Errorf("serve --tokens %s served, or showed the token:\n%s", name, stderr.String())
			}
		})
	}
}
